// How the shadow result of dry-run AuthorizationPolicies (`istio.io/dry-run`) is reported, for an
// HTTP request (authorize.ts) and for a connection passed through as TCP (authorize-connection.ts)
// alike: one info line per action, worded as Envoy's RBAC filters (HTTP and network) log their
// shadow rules (`shadow denied, matched policy ns[foo]-policy[name]-rule[0]`), with the fields
// Istio's dry-run metadata names, authz_dry_run_action and authz_dry_run_result, and the policy.

import type { Logger } from 'pino';
import type { DryRunResult } from '../../policy/authorization.js';

/** `about`: what identifies the request or connection (requestId; remote address and port). */
export function logDryRun(log: Logger | undefined, results: readonly DryRunResult[], about: Readonly<Record<string, unknown>>): void {
  if (!log) return;
  for (const r of results) {
    const fields = { ...about, authz_dry_run_action: r.action, authz_dry_run_result: r.result, ...(r.rule ? { policy: r.rule } : {}) };
    log.info(fields, r.rule ? `rbac shadow ${r.result}, matched policy ${r.rule}` : `rbac shadow ${r.result}, no dry-run ${r.action.toUpperCase()} policy matched`);
  }
}
