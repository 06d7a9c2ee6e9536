// The tokens a request holds for a `fromHeaders` or `fromCookies` location, read as Envoy's jwt_authn
// reads them and then some, so that no token reaches the app unverified where the rule governs.
//
// A header:
//   - no prefix: the whole value (trimmed) is the token;
//   - a prefix (`Bearer `): found anywhere in the value, not only at its start, so `Basic x, Bearer t`
//     (one line, or two header lines node joins) has its token checked as Envoy checks it, where a
//     start-only match let the request through as anonymous with an unchecked token for the app;
//   - the token is the run of base64url characters and dots after the prefix (Envoy's extractJWT);
//     with none, the rest of the value, which then fails verification (401) as in Envoy;
//   - every occurrence of the prefix is a token to verify (Envoy checks the first only): a forged
//     token behind a good one is refused, not forwarded;
//   - the prefix is compared without case (Envoy compares it exactly): `bearer t` is verified too,
//     never passed on unchecked.

/** Base64url and `.`: what a compact JWT is made of. */
function isJwtChar(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 45 || c === 95 || c === 46;
}

export function tokensInHeader(value: string, prefix: string): string[] {
  if (prefix === '') {
    const whole = value.trim();
    return whole === '' ? [] : [whole];
  }
  const lower = value.toLowerCase();
  const p = prefix.toLowerCase();
  const out: string[] = [];
  for (let at = lower.indexOf(p); at >= 0; ) {
    let start = at + p.length;
    while (start < value.length && !isJwtChar(value.charCodeAt(start))) start++;
    if (start === value.length) {
      // Nothing token-like after the prefix: the value as it is, which verification refuses.
      out.push(value);
      break;
    }
    let end = start;
    while (end < value.length && isJwtChar(value.charCodeAt(end))) end++;
    out.push(value.slice(start, end));
    // Search on after the token, so that a prefix spelt inside a token is not another token.
    at = lower.indexOf(p, end);
  }
  return out;
}

/**
 * Every non-empty value of the cookie `name` in the Cookie header(s), surrounding double quotes
 * dropped as Envoy parses cookies. Every one is verified (Envoy reads one): none reaches the app
 * unchecked.
 */
export function tokensInCookies(header: string | string[] | undefined, name: string): string[] {
  const out: string[] = [];
  for (const line of Array.isArray(header) ? header : header === undefined ? [] : [header]) {
    for (const pair of line.split(';')) {
      const eq = pair.indexOf('=');
      if (eq < 0 || pair.slice(0, eq).trim() !== name) continue;
      let v = pair.slice(eq + 1).trim();
      if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) v = v.slice(1, -1);
      if (v !== '') out.push(v);
    }
  }
  return out;
}
