// Where the mesh CA lives in cluster mode, as istiod keeps it: an operator's `cacerts` Secret in the
// control plane's namespace when there is one (plugged in: ca-cert.pem, ca-key.pem, root-cert.pem,
// cert-chain.pem), else the self-signed root in the Secret `istio-ca-secret` (ca-cert.pem,
// ca-key.pem), made on first start and read again on every later one, so a restarted control plane
// keeps the root every proxy trusts. Two replicas starting at once both try to create it; the API
// server lets one win, and the other reads the winner's.

import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { authorityFrom, invalidTrustDomain, type CertificateAuthority, type TrustDomainSource } from '../core/pki/authority.js';
import { CA_CERT_FILE, CA_KEY_FILE, CERT_CHAIN_FILE, ROOT_CERT_FILE, caMaterialFrom, newSelfSignedRoot } from '../core/pki/ca-files.js';
import { DEFAULT_TRUST_DOMAIN } from '../core/pki/spiffe.js';
import { getSecret, putSecret } from '../core/sources/kube-secrets.js';
import { describeError } from '../core/sources/kube-request.js';

/** Istio's names: the operator's plugged-in CA, and the one istiod makes itself. */
export const PLUGGED_CA_SECRET = 'cacerts';
export const SELF_SIGNED_CA_SECRET = 'istio-ca-secret';

export type CaLoad = { ok: true; ca: CertificateAuthority } | { ok: false; message: string };

export async function loadOrCreateCaSecrets(
  kc: KubeConfig,
  namespace: string,
  opts: { trustDomain?: TrustDomainSource; now?: () => Date; logger?: Logger } = {},
): Promise<CaLoad> {
  const trustDomain = opts.trustDomain ?? DEFAULT_TRUST_DOMAIN;
  const first = invalidTrustDomain(trustDomain);
  if (first.invalid) return { ok: false, message: `invalid trust domain ${JSON.stringify(first.name)}` };
  const now = opts.now ?? (() => new Date());
  const log = opts.logger;
  const fromSecret = (name: string, data: Record<string, string>): CaLoad => {
    const files = Object.fromEntries([CA_CERT_FILE, CA_KEY_FILE, ROOT_CERT_FILE, CERT_CHAIN_FILE].map((f) => [f, data[f]]));
    const where = `Secret ${namespace}/${name}`;
    const loaded = caMaterialFrom(files, (f) => `${where} key ${f}`, now());
    return loaded.ok ? { ok: true, ca: authorityFrom(loaded.material, where, { trustDomain, now }) } : loaded;
  };
  try {
    const plugged = await getSecret(kc, namespace, PLUGGED_CA_SECRET);
    if (plugged) {
      log?.info({ secret: `${namespace}/${PLUGGED_CA_SECRET}` }, 'using the plugged-in CA');
      return fromSecret(PLUGGED_CA_SECRET, plugged.data);
    }
    for (let attempt = 0; attempt < 3; attempt++) {
      const own = await getSecret(kc, namespace, SELF_SIGNED_CA_SECRET);
      if (own) {
        log?.info({ secret: `${namespace}/${SELF_SIGNED_CA_SECRET}` }, 'using the self-signed root stored on an earlier start');
        return fromSecret(SELF_SIGNED_CA_SECRET, own.data);
      }
      const root = newSelfSignedRoot(first.name, now());
      // root-cert.pem too: the Secret then reads like a cacerts one to a person looking at it.
      const put = await putSecret(
        kc,
        {
          namespace,
          name: SELF_SIGNED_CA_SECRET,
          type: 'istio.io/ca-root',
          data: { [CA_CERT_FILE]: root.certPem, [CA_KEY_FILE]: root.keyPem, [ROOT_CERT_FILE]: root.certPem },
          labels: { app: 'meshgate-control' },
        },
        { onlyCreate: true },
      );
      if (put.created) {
        log?.info({ secret: `${namespace}/${SELF_SIGNED_CA_SECRET}` }, 'made a new self-signed root and stored it; later starts use the same one');
        return fromSecret(SELF_SIGNED_CA_SECRET, { [CA_CERT_FILE]: root.certPem, [CA_KEY_FILE]: root.keyPem, [ROOT_CERT_FILE]: root.certPem });
      }
      // Another replica created it first: read theirs.
    }
    return { ok: false, message: `Secret ${namespace}/${SELF_SIGNED_CA_SECRET} could neither be read nor created` };
  } catch (err) {
    return { ok: false, message: `cannot read or store the CA in namespace ${namespace}: ${describeError(err)}` };
  }
}
