// What `/config_dump` must not show: the values of a Secret (a gateway's `credentialName` key pair in
// a file-mode folder, an ACME account key), and the private or symmetric members of a JWK written
// inline in a RequestAuthentication's `jwks` (`k` of an `oct` key, `d`, `p`, `q` … of a private key
// pasted where its public half belonged). Envoy's config_dump prints a secret's private key as
// `[redacted]`; the admin port is loopback-only, but its output ends up in bug reports and support
// bundles, and a key pasted there is a key leaked. The names stay (a Secret's file names, a key's
// `kid` and type), so a person can still see what is there.

import { isRecord } from '../config/load.js';

export const REDACTED = '[redacted]';

/** JWK members that hold secret material (RFC 7518 §6.2.2, §6.3.2, §6.4.1). */
const SECRET_JWK_MEMBERS = new Set(['k', 'd', 'p', 'q', 'dp', 'dq', 'qi', 'oth']);

/** `raw` as config_dump shows it: secret values replaced, anything else as it is. */
export function redactForDump(raw: Readonly<Record<string, unknown>>): Readonly<Record<string, unknown>> {
  if (raw.kind === 'Secret') return redactSecret(raw);
  if (raw.kind === 'RequestAuthentication' && isRecord(raw.spec) && Array.isArray(raw.spec.jwtRules)) {
    return { ...raw, spec: { ...raw.spec, jwtRules: raw.spec.jwtRules.map((rule) => (isRecord(rule) && typeof rule.jwks === 'string' ? { ...rule, jwks: redactJwks(rule.jwks) } : rule)) } };
  }
  return raw;
}

function redactSecret(raw: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...raw };
  for (const field of ['data', 'stringData']) {
    const values = raw[field];
    if (values === undefined) continue;
    out[field] = isRecord(values) ? Object.fromEntries(Object.keys(values).map((k) => [k, REDACTED])) : REDACTED;
  }
  return out;
}

/** A key set's text with its secret members replaced; text that is not a key set is shown as it is (it verifies nothing). */
function redactJwks(text: string): string {
  let set: unknown;
  try {
    set = JSON.parse(text);
  } catch {
    return text;
  }
  if (!isRecord(set) || !Array.isArray(set.keys)) return text;
  const keys = set.keys.map((key) => (isRecord(key) ? Object.fromEntries(Object.entries(key).map(([m, v]) => [m, SECRET_JWK_MEMBERS.has(m) ? REDACTED : v])) : key));
  return JSON.stringify({ ...set, keys });
}
