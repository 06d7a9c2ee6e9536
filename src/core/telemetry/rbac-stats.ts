// The shadow results of dry-run AuthorizationPolicies as Istio's proxies export them to Prometheus:
// Envoy's RBAC filter counts `http.<stat prefix>.rbac.istio_dry_run_<allow|deny>_shadow_<allowed|denied>`
// and Istio's stats tags turn that into one series per listener,
// `envoy_http_inbound_0_0_0_0_8080_rbac{authz_dry_run_action="deny",authz_dry_run_result="denied"}`
// (a sidecar's inbound port; `outbound_0_0_0_0_<port>` for a gateway's listener), the series Istio's
// Dry Run task queries. Counted from the request record, registered with the Istio series.

import type { Registry } from 'prom-client';
import { promClient } from './prom-client-module.js';
import type { RbacDryRun } from './access-log.js';

/** `inbound_0.0.0.0_8080` → `envoy_http_inbound_0_0_0_0_8080_rbac`. */
export const rbacMetricName = (statPrefix: string): string => `envoy_http_${statPrefix.replace(/[^A-Za-z0-9_]/g, '_')}_rbac`;

export class RbacStats {
  /** Metric name → `action|result` → count. */
  readonly #counts = new Map<string, Map<string, number>>();
  #registry: Registry | undefined;

  observe(dryRun: RbacDryRun): void {
    const name = rbacMetricName(dryRun.statPrefix);
    let series = this.#counts.get(name);
    if (!series) {
      series = new Map();
      this.#counts.set(name, series);
      if (this.#registry) this.#register(name, series);
    }
    for (const r of dryRun.results) {
      const key = `${r.action}|${r.result}`;
      series.set(key, (series.get(key) ?? 0) + 1);
    }
  }

  /** Registers every series counted so far, and those counted later as they first appear. */
  registerWith(registry: Registry): void {
    this.#registry = registry;
    for (const [name, series] of this.#counts) this.#register(name, series);
  }

  #register(name: string, series: ReadonlyMap<string, number>): void {
    const { Counter } = promClient();
    new Counter({
      name,
      help: 'Shadow results of dry-run AuthorizationPolicies (Envoy RBAC filter shadow rules).',
      labelNames: ['authz_dry_run_action', 'authz_dry_run_result'],
      registers: [this.#registry!],
      collect() {
        this.reset();
        for (const [key, n] of series) {
          const [action, result] = key.split('|');
          this.inc({ authz_dry_run_action: action!, authz_dry_run_result: result! }, n);
        }
      },
    });
  }
}
