// prom-client, loaded when a registry is first read (istio-metrics.ts) rather than when the program
// starts: a proxy run with metrics off (`--metrics-port 0`), or never scraped, never holds it, nor
// the OpenTelemetry API it brings along.

import { createRequire } from 'node:module';

type PromClient = typeof import('prom-client');

let loaded: PromClient | undefined;

export function promClient(): PromClient {
  return (loaded ??= createRequire(import.meta.url)('prom-client') as PromClient);
}
