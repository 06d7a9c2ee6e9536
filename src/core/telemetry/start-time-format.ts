// %START_TIME(…)%'s format, as Envoy writes it: strftime's conversions (absl's, in UTC, as Envoy
// logs times) plus Envoy's own `%s` (seconds since the epoch), `%f` / `%1f`…`%9f` (the second's
// fraction, nine digits by default) and absl's `%E<n>S` / `%E*S` (seconds with n decimals). A format
// is compiled once into a list of pieces; JavaScript's clock has milliseconds, so the digits past the
// third are zeros.

type Piece = string | ((t: Date) => string);

const two = (n: number): string => (n < 10 ? `0${n}` : String(n));
const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];

/** The second's fraction with `digits` digits (1–9). */
function fraction(t: Date, digits: number): string {
  return String(t.getUTCMilliseconds()).padStart(3, '0').padEnd(9, '0').slice(0, digits);
}

function dayOfYear(t: Date): number {
  return Math.floor((t.getTime() - Date.UTC(t.getUTCFullYear(), 0, 1)) / 86_400_000) + 1;
}

const CONVERSIONS: Readonly<Record<string, (t: Date) => string>> = {
  Y: (t) => String(t.getUTCFullYear()),
  y: (t) => two(t.getUTCFullYear() % 100),
  C: (t) => two(Math.floor(t.getUTCFullYear() / 100)),
  m: (t) => two(t.getUTCMonth() + 1),
  d: (t) => two(t.getUTCDate()),
  e: (t) => String(t.getUTCDate()).padStart(2, ' '),
  H: (t) => two(t.getUTCHours()),
  I: (t) => two(t.getUTCHours() % 12 || 12),
  M: (t) => two(t.getUTCMinutes()),
  S: (t) => two(t.getUTCSeconds()),
  p: (t) => (t.getUTCHours() < 12 ? 'AM' : 'PM'),
  j: (t) => String(dayOfYear(t)).padStart(3, '0'),
  a: (t) => DAYS[t.getUTCDay()]!.slice(0, 3),
  A: (t) => DAYS[t.getUTCDay()]!,
  b: (t) => MONTHS[t.getUTCMonth()]!.slice(0, 3),
  h: (t) => MONTHS[t.getUTCMonth()]!.slice(0, 3),
  B: (t) => MONTHS[t.getUTCMonth()]!,
  u: (t) => String(t.getUTCDay() || 7),
  w: (t) => String(t.getUTCDay()),
  s: (t) => String(Math.floor(t.getTime() / 1000)),
  z: () => '+0000',
  Z: () => 'UTC',
  T: (t) => `${two(t.getUTCHours())}:${two(t.getUTCMinutes())}:${two(t.getUTCSeconds())}`,
  R: (t) => `${two(t.getUTCHours())}:${two(t.getUTCMinutes())}`,
  F: (t) => `${t.getUTCFullYear()}-${two(t.getUTCMonth() + 1)}-${two(t.getUTCDate())}`,
  D: (t) => `${two(t.getUTCMonth() + 1)}/${two(t.getUTCDate())}/${two(t.getUTCFullYear() % 100)}`,
  f: (t) => fraction(t, 9),
};

const SPEC = /%(?:([1-9])f|E([0-9*])S|([A-Za-z%]))/g;

/** A compiled %START_TIME(…)% format. */
export function compileTimeFormat(format: string): (t: Date) => string {
  const pieces: Piece[] = [];
  let at = 0;
  for (const m of format.matchAll(SPEC)) {
    if (m.index > at) pieces.push(format.slice(at, m.index));
    at = m.index + m[0].length;
    const [whole, fracDigits, secDigits, letter] = m;
    if (fracDigits !== undefined) {
      const n = Number(fracDigits);
      pieces.push((t) => fraction(t, n));
    } else if (secDigits !== undefined) {
      // %E*S: as many decimals as needed (milliseconds here, none when they are 0).
      const n = secDigits === '*' ? -1 : Number(secDigits);
      pieces.push((t) => {
        const digits = n >= 0 ? n : t.getUTCMilliseconds() === 0 ? 0 : 3;
        return digits === 0 ? two(t.getUTCSeconds()) : `${two(t.getUTCSeconds())}.${fraction(t, digits)}`;
      });
    } else if (letter === '%') pieces.push('%');
    else if (letter === 'n') pieces.push('\n');
    else if (letter === 't') pieces.push('\t');
    else pieces.push(CONVERSIONS[letter!] ?? whole);
  }
  if (at < format.length) pieces.push(format.slice(at));
  if (pieces.every((p) => typeof p === 'string')) {
    const fixed = pieces.join('');
    return () => fixed;
  }
  return (t) => {
    let out = '';
    for (const p of pieces) out += typeof p === 'string' ? p : p(t);
    return out;
  };
}
