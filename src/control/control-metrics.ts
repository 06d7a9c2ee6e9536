// The control plane's own metrics, named after istiod's so the dashboards and alerts written for
// istiod read them: configuration pushes (`pilot_xds_pushes`), proxies connected (`pilot_xds`),
// proxies refusing a version (`pilot_total_xds_rejects`), the time from a push to the proxy's
// acknowledgement (`pilot_proxy_convergence_time`, seconds), and certificate signing
// (`citadel_server_csr_count`, `citadel_server_success_cert_issuance_count`,
// `citadel_server_csr_sign_err_count`). Served on the debug port at `/metrics`, as istiod serves
// its monitoring port (15014).

import { Counter, Gauge, Histogram, Registry } from 'prom-client';

export class ControlMetrics {
  readonly registry = new Registry();
  private readonly pushes: Counter<'type'>;
  private readonly connectedProxies: Gauge;
  private readonly rejects: Counter;
  private readonly convergence: Histogram;
  private readonly csrs: Counter;
  private readonly issued: Counter;
  private readonly signErrors: Counter;
  private connected = 0;

  constructor() {
    const registers = [this.registry];
    // Istio names pushes by xDS type; ours carry every kind at once: a proxy's whole subset (`sotw`,
    // on subscribing) or what changed in it (`delta`).
    this.pushes = new Counter({ name: 'pilot_xds_pushes', help: 'Pushes of configuration to proxies, by type: `sotw` (the whole subset a proxy receives) or `delta` (what changed in it).', labelNames: ['type'], registers });
    this.connectedProxies = new Gauge({ name: 'pilot_xds', help: 'Proxies connected to this control plane.', registers });
    this.rejects = new Counter({ name: 'pilot_total_xds_rejects', help: 'Configuration versions proxies refused.', registers });
    this.convergence = new Histogram({ name: 'pilot_proxy_convergence_time', help: 'Seconds from sending a configuration version to a proxy until it acknowledged it.', buckets: [0.1, 0.5, 1, 3, 5, 10, 20, 30], registers });
    this.csrs = new Counter({ name: 'citadel_server_csr_count', help: 'Certificate signing requests received.', registers });
    this.issued = new Counter({ name: 'citadel_server_success_cert_issuance_count', help: 'Certificates issued.', registers });
    this.signErrors = new Counter({ name: 'citadel_server_csr_sign_err_count', help: 'Certificate signing requests refused.', registers });
    this.connectedProxies.set(0);
  }

  proxyConnected(): void {
    this.connectedProxies.set(++this.connected);
  }

  proxyDisconnected(): void {
    this.connectedProxies.set((this.connected = Math.max(0, this.connected - 1)));
  }

  pushed(kind: 'sotw' | 'delta'): void {
    this.pushes.inc({ type: kind });
  }

  acknowledged(seconds: number | undefined): void {
    if (seconds !== undefined) this.convergence.observe(seconds);
  }

  rejected(): void {
    this.rejects.inc();
  }

  certificateRequest(ok: boolean): void {
    this.csrs.inc();
    (ok ? this.issued : this.signErrors).inc();
  }
}
