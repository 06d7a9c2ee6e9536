# meshgate's container image: the `meshgate` command as uid 1337 (the uid Istio's proxies run as and
# traffic capture exempts), on a read-only root filesystem: nothing in the image is written at run
# time, and the manifests in deploy/ mount the few writable folders (/tmp, the certs folder) as
# emptyDir. By default it runs an ingress gateway on the config folder mounted at /etc/meshgate/config,
# with Gateway ports 80 and 443 on 8080 and 8443 (the ports Istio's ingress gateway uses, so Services
# and probes written for it carry over); deploy/ gives every role its own arguments.
#
# The base is the Node line package.json supports and CI tests (engines: node >= 20): Node 20 on
# Debian 12, the same in both stages. scripts/build-image.sh builds it with podman, also where no
# registry can be reached.

# --- build: compile TypeScript, bundle the sidecar, then keep only the runtime dependencies -----
FROM node:20-bookworm-slim AS build
# A private CA for the npm registry (a proxy that terminates TLS), if the build environment needs one.
ARG NODE_EXTRA_CA_CERTS
WORKDIR /src
COPY package.json package-lock.json ./
# Dependencies first, without the prepare script (no sources yet), so this layer is cached
# until the lock file changes.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY bin ./bin
COPY src ./src
COPY scripts/bundle-sidecar.mjs ./scripts/
RUN npx tsc -p . && node scripts/bundle-sidecar.mjs && npm prune --omit=dev --no-audit --no-fund

# --- runtime --------------------------------------------------------------------------------------
FROM node:20-bookworm-slim
ENV NODE_ENV=production
# iptables (iptables-restore, ip6tables-restore) for the injected init container, which runs this
# image's `meshgate iptables` to install the pod's traffic capture.
RUN apt-get update \
 && apt-get install -y --no-install-recommends iptables \
 && rm -rf /var/lib/apt/lists/*
RUN groupadd --gid 1337 meshgate \
 && useradd --uid 1337 --gid 1337 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin meshgate \
 && mkdir -p /etc/meshgate/config
WORKDIR /app
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/bin ./bin
COPY --from=build /src/dist/src ./dist/src
# The sidecar's code as one file (bin/meshgate.js runs `sidecar` from it): about 2.5 MB less per pod.
COPY --from=build /src/dist/sidecar ./dist/sidecar
# The demo config, for `podman run IMAGE validate gateway-config` and friends.
COPY gateway-config ./gateway-config
USER 1337:1337
EXPOSE 8080 8443 15021 15090
ENTRYPOINT ["node", "bin/meshgate.js"]
CMD ["gateway", "--config", "/etc/meshgate/config", "--ports", "80=8080,443=8443"]
