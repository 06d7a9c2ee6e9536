// Go-style durations (`1.5s`, `300ms`, `1h30m`, `0`) as Istio and Kubernetes write them. One parser
// for validation, route timeouts and cookie lifetimes alike.

const DURATION_PART = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/y;
const UNIT_NS: Readonly<Record<string, number>> = { ns: 1, us: 1e3, 'µs': 1e3, 'μs': 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };

export function parseDurationNs(text: string): number | undefined {
  let s = text;
  let sign = 1;
  if (s.startsWith('-') || s.startsWith('+')) {
    sign = s.startsWith('-') ? -1 : 1;
    s = s.slice(1);
  }
  if (s === '0') return 0;
  if (s === '') return undefined;
  let total = 0;
  let pos = 0;
  while (pos < s.length) {
    DURATION_PART.lastIndex = pos;
    const m = DURATION_PART.exec(s);
    if (!m) return undefined;
    total += Number(m[1]) * (UNIT_NS[m[2] ?? ''] ?? Number.NaN);
    pos = DURATION_PART.lastIndex;
  }
  // Rounding to whole nanoseconds removes float noise such as 1.1s → 1100000000.0000002.
  return Number.isFinite(total) ? sign * Math.round(total) : undefined;
}

/**
 * Go-style durations as Istio reads them (`1.5s`, `300ms`, `1m`, `1h30m`, `0`), in milliseconds;
 * undefined when the text is not a duration.
 */
export function parseDuration(text: string): number | undefined {
  if (typeof text !== 'string') return undefined;
  const ns = parseDurationNs(text);
  return ns === undefined ? undefined : ns / 1e6;
}

