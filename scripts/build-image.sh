#!/usr/bin/env bash
# Builds meshgate's container image from the Dockerfile with podman, and checks it runs the way the
# manifests in deploy/ run it: as uid 1337 on a read-only root filesystem, and as the injected init
# container runs it: `meshgate iptables` installs capture in a network namespace of its own.
#
#   scripts/build-image.sh [TAG]          (default meshgate:0.1.0, the name deploy/ uses)
#
# Where the registry that serves the base image cannot be reached, LOCAL_BASE=1 first builds a
# stand-in for it: a minimal Debian 12 root filesystem (debootstrap) with this machine's Node.js
# (which must be the Node 20 line the Dockerfile names) and npm copied in, imported and tagged with
# the Dockerfile's FROM name, so the Dockerfile itself stays as it is. Needs root, podman, runc and
# debootstrap (apt-get install podman runc debootstrap). The storage is overlay under a throwaway
# root (STORAGE, default a temporary folder), removed at the end unless KEEP_STORAGE=1.
#
# Takes a few minutes: not part of `npm test`.
set -euo pipefail
cd "$(dirname "$0")/.."

tag=${1:-meshgate:0.1.0}
base=$(sed -n 's/^FROM \([^ ]*\).*/\1/p' Dockerfile | head -1)
storage=${STORAGE:-$(mktemp -d /var/tmp/meshgate-podman.XXXXXX)}
cleanup() {
  [ -n "${rootfs:-}" ] && rm -rf "$rootfs"
  if [ "${KEEP_STORAGE:-0}" != 1 ]; then
    podman "${pm[@]}" system reset --force >/dev/null 2>&1 || true
    rm -rf "$storage"
  fi
}
trap cleanup EXIT
# crun refuses some kernels' cgroup layouts; runc and chroot isolation work where it does not.
pm=(--root "$storage/root" --runroot "$storage/run" --storage-driver overlay --runtime runc)
run_opts=(--rm --ulimit nofile=4096:4096 --ulimit nproc=4096:4096)
say() { printf '\n==> %s\n' "$*"; }

if [ "${LOCAL_BASE:-0}" = 1 ]; then
  node_major=$(node -p 'process.versions.node.split(".")[0]')
  want_major=$(printf '%s' "$base" | sed -n 's/^node:\([0-9]*\).*/\1/p')
  if [ "$node_major" != "$want_major" ]; then
    echo "this machine has Node $node_major; the Dockerfile's base is $base" >&2
    exit 1
  fi
  say "local stand-in for $base: debootstrap bookworm + Node $(node --version)"
  rootfs=$(mktemp -d /var/tmp/meshgate-rootfs.XXXXXX)
  debootstrap --variant=minbase --include=ca-certificates bookworm "$rootfs" >/dev/null
  node_bin=$(readlink -f "$(command -v node)")
  npm_dir=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")
  install -m 0755 "$node_bin" "$rootfs/usr/local/bin/node"
  mkdir -p "$rootfs/usr/local/lib/node_modules"
  cp -a "$npm_dir" "$rootfs/usr/local/lib/node_modules/npm"
  ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
  ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"
  # Node links against the C and C++ runtime only (libstdc++ is in minbase); check it starts.
  chroot "$rootfs" /usr/local/bin/node --version >/dev/null
  tar -C "$rootfs" -c . | podman "${pm[@]}" import --change 'CMD ["node"]' - "docker.io/library/$base" >/dev/null
fi

say "podman build -t $tag"
build_args=()
if [ -n "${NODE_EXTRA_CA_CERTS:-}" ] && [ -f "$NODE_EXTRA_CA_CERTS" ]; then
  # The build's npm ci trusts what this machine's Node trusts (a registry proxy's CA, say).
  build_args+=(--build-arg "NODE_EXTRA_CA_CERTS=$NODE_EXTRA_CA_CERTS" --volume "$NODE_EXTRA_CA_CERTS:$NODE_EXTRA_CA_CERTS:ro")
fi
podman "${pm[@]}" build --isolation=chroot "${build_args[@]}" -t "$tag" .

say "checks: uid 1337, read-only root, the CLI answers"
uid=$(podman "${pm[@]}" image inspect --format '{{.Config.User}}' "$tag")
[ "$uid" = "1337:1337" ] || { echo "image user is '$uid', not 1337:1337" >&2; exit 1; }
podman "${pm[@]}" run "${run_opts[@]}" --read-only "$tag" validate gateway-config
if podman "${pm[@]}" run "${run_opts[@]}" --read-only "$tag" --version; then :; else
  echo "(meshgate --version is not there yet in this tree)"
fi
podman "${pm[@]}" run "${run_opts[@]}" --read-only --entrypoint id "$tag" -u | grep -qx 1337
# The sidecar runs from its bundle (bin/meshgate.js picks it when it is as new as dist/src): it loads.
podman "${pm[@]}" run "${run_opts[@]}" --read-only --entrypoint node "$tag" --input-type=module \
  -e "const { main } = await import('/app/dist/sidecar/main.mjs'); process.exitCode = await main(['sidecar', '--help'])" | grep -q '^usage: meshgate sidecar' \
  || { echo "the sidecar's bundle does not run in the image" >&2; exit 1; }
podman "${pm[@]}" run "${run_opts[@]}" --read-only --entrypoint node "$tag" \
  -e "const { statSync: s } = require('node:fs'); process.exitCode = s('dist/sidecar/main.mjs').mtimeMs >= s('dist/src/cli/main.js').mtimeMs ? 0 : 1" \
  || { echo "the image's sidecar bundle is older than dist/src: bin/meshgate.js would not run it" >&2; exit 1; }
say "checks: the init container's capture installs from the image (meshgate iptables, own network namespace)"
podman "${pm[@]}" run "${run_opts[@]}" --read-only --network none --user 0:0 \
  --cap-add NET_ADMIN --cap-add NET_RAW --entrypoint sh "$tag" \
  -c 'node bin/meshgate.js iptables && iptables-save -t nat | grep -q ISTIO_REDIRECT' \
  || { echo "meshgate iptables did not install capture inside the image" >&2; exit 1; }
if [ "${SAVE:-}" != "" ]; then podman "${pm[@]}" save -o "$SAVE" "$tag"; fi
say "built $tag"
