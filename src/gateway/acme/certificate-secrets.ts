// ACME results in cluster mode, where cert-manager puts them: the Secret `secretName` of type
// kubernetes.io/tls (`tls.crt` full chain leaf first, `tls.key`) in the gateway's namespace, so the
// same Certificate YAML works in both modes and `credentialName` finds the result where it looks.
// What meta.json holds in file mode rides along as annotations: cert-manager's own
// (`cert-manager.io/certificate-name`, `issuer-name`, `issuer-kind`, `alt-names`) for people and
// tools, and meshgate's record (`meshgate.io/acme`: source, issuer, last error) for the manager and
// the credential store. The ACME account key is the Secret `privateKeySecretRef` names, key
// `tls.key` (or the key it says), as cert-manager keeps it.

import { X509Certificate } from 'node:crypto';
import acme from 'acme-client';
import type { SecretWriter } from '../../core/tls/types.js';
import { SOURCE_ANNOTATION } from '../../core/tls/credential-source.js';
import { peerIdentity } from '../../core/tls/peer-identity.js';
import type { AccountKey } from './acme-order.js';
import { storedFrom, type CertificateStorage, type StoredCertificate } from './certificate-files.js';

export const ACME_META_ANNOTATION = 'meshgate.io/acme';
const TLS_TYPE = 'kubernetes.io/tls';

export function secretStorage(secrets: SecretWriter): CertificateStorage {
  const where = (name: string) => `Secret ${secrets.namespace}/${name}`;
  return {
    metaName: `the ${ACME_META_ANNOTATION} annotation`,

    async read(secretName): Promise<StoredCertificate | undefined> {
      const s = await secrets.fetch(secretName);
      const certPem = s?.data['tls.crt'];
      const keyPem = s?.data['tls.key'];
      if (!s || !certPem || !keyPem) return undefined;
      return storedFrom(certPem, keyPem, s.annotations[ACME_META_ANNOTATION]);
    },

    async write(secretName, files) {
      const leaf = new X509Certificate(files.certPem);
      const altNames = peerIdentity(leaf).dnsNames;
      const [kind, ...rest] = files.meta.issuer.split(' ');
      const issuerName = (rest.join(' ').split('/').pop() ?? '') || files.meta.issuer;
      await secrets.put(secretName, {
        type: TLS_TYPE,
        data: { 'tls.crt': files.certPem, 'tls.key': files.keyPem },
        annotations: {
          'cert-manager.io/alt-names': altNames.join(','),
          ...(files.meta.source === 'acme' ? { 'cert-manager.io/issuer-name': issuerName, 'cert-manager.io/issuer-kind': kind ?? '' } : {}),
          [SOURCE_ANNOTATION]: files.meta.source,
          [ACME_META_ANNOTATION]: JSON.stringify(files.meta),
        },
        labels: { 'app.kubernetes.io/managed-by': 'meshgate' },
      });
    },

    async accountKey(at): Promise<AccountKey> {
      const file = `${where(at.secretName)} key ${at.key}`;
      const existing = (await secrets.fetch(at.secretName))?.data[at.key];
      if (existing) return { pem: existing, file };
      // ECDSA P-256, as in file mode. Two gateways racing: one creates, the other reads it back.
      const pem = (await acme.crypto.createPrivateEcdsaKey()).toString();
      const put = await secrets.put(at.secretName, { type: 'Opaque', data: { [at.key]: pem }, labels: { 'app.kubernetes.io/managed-by': 'meshgate' } }, { onlyCreate: true });
      if (put.created) return { pem, file, note: `created the ACME account key ${file}` };
      const theirs = (await secrets.fetch(at.secretName))?.data[at.key];
      if (!theirs) throw new Error(`${where(at.secretName)} exists without the key ${at.key}: add it or delete the Secret`);
      return { pem: theirs, file };
    },
  };
}
