// Reads a proxy's `/stats/prometheus` the way a scraper does: the text, and the samples of one
// series family with their labels parsed, for tests that compare labels with Istio's.

import assert from 'node:assert/strict';

export interface Sample {
  readonly labels: Record<string, string>;
  readonly value: number;
}

export async function scrape(port: number, path = '/stats/prometheus'): Promise<string> {
  const r = await fetch(`http://127.0.0.1:${port}${path}`);
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type') ?? '', /^text\/plain/);
  return r.text();
}

/** The samples named `name` in a scrape's text (histograms: pass `name_count` or `name_bucket`). */
export function samplesOf(text: string, name: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const m = /^[^{ ]+(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const [, k, v] of (m[1] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[k!] = v!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    out.push({ labels, value: Number(m[2]) });
  }
  return out;
}

export async function scrapeSamples(port: number, name: string): Promise<Sample[]> {
  return samplesOf(await scrape(port), name);
}
