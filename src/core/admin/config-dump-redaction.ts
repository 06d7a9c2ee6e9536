// What `/config_dump` must not show: the values of a Secret (a gateway's `credentialName` key pair in
// a file-mode folder, an ACME account key). Envoy's config_dump prints a secret's private key as
// `[redacted]`; the admin port is loopback-only, but its output ends up in bug reports and support
// bundles, and a key pasted there is a key leaked. The keys of `data` and `stringData` stay, so a
// person can still see which files a Secret holds.

export const REDACTED = '[redacted]';

/** `raw` as config_dump shows it: a Secret's values replaced, anything else as it is. */
export function redactForDump(raw: Readonly<Record<string, unknown>>): Readonly<Record<string, unknown>> {
  if (raw.kind !== 'Secret') return raw;
  const out: Record<string, unknown> = { ...raw };
  for (const field of ['data', 'stringData']) {
    const values = raw[field];
    if (values === undefined) continue;
    out[field] = values !== null && typeof values === 'object' && !Array.isArray(values) ? Object.fromEntries(Object.keys(values).map((k) => [k, REDACTED])) : REDACTED;
  }
  return out;
}
