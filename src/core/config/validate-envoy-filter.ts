// Validation of Istio's EnvoyFilter: what meshgate enforces of it (the local rate limit filter and
// its per-route configuration) is checked as Envoy would check it, and every other patch is a
// warning naming the field meshgate ignores (policy/envoy-filter-patches.ts reads both ways).

import { readEnvoyFilter } from '../policy/envoy-filter-patches.js';
import type { Checker, Obj } from './validate-common.js';

export function validateEnvoyFilter(c: Checker, spec: Obj): void {
  readEnvoyFilter(c, spec);
}
