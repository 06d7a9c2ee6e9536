// Path normalization before routing (Istio's default BASE: RFC 3986 dot-segment removal, `\` to
// `/`, unreserved %-escapes decoded once). The normalized path is what routes match and what goes
// upstream, so policy and backend see the same path.

const UNRESERVED = /%(4[1-9A-F]|5[0-9A]|6[1-9A-F]|7[0-9A]|3[0-9]|2D|2E|5F|7E)/gi;

/** Returns the normalized path, or undefined when it must be refused with 400 (`%00`, not absolute). */
export function normalizePath(raw: string): string | undefined {
  if (/%00/.test(raw)) return undefined;
  if (!raw.startsWith('/') && !raw.startsWith('\\')) return raw === '*' ? raw : undefined;
  let path = raw.replace(/\\/g, '/');
  if (path.includes('%')) path = path.replace(UNRESERVED, (m) => String.fromCharCode(parseInt(m.slice(1), 16)));
  if (!path.includes('/.')) return path;
  const out: string[] = [];
  const segments = path.split('/');
  for (let i = 1; i < segments.length; i++) {
    const s = segments[i]!;
    if (s === '.') {
      if (i === segments.length - 1) out.push('');
    } else if (s === '..') {
      out.pop();
      if (i === segments.length - 1) out.push('');
    } else out.push(s);
  }
  return '/' + out.join('/');
}
