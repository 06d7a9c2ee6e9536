// The control plane's own metrics, named after istiod's so the dashboards and alerts written for
// istiod read them: configuration pushes (`pilot_xds_pushes`), proxies connected (`pilot_xds`),
// proxies refusing a version (`pilot_total_xds_rejects`), the time from a push to the proxy's
// acknowledgement (`pilot_proxy_convergence_time`, seconds), the time one push to one proxy takes
// from computing what it gets to having written it (`pilot_xds_push_time`, seconds), the size of
// what was written (`pilot_xds_config_size_bytes`), why pushes happened (`pilot_push_triggers`, by
// istiod's reasons: endpoint, service, config, secret, namespace, global), and certificate signing
// (`citadel_server_csr_count`, `citadel_server_success_cert_issuance_count`,
// `citadel_server_csr_sign_err_count`, `citadel_server_authentication_failure_count`, the root's
// expiry), services known (`pilot_services`), sidecar injection (`sidecar_injection_*_total`) and
// `istio_build{component="pilot"}`; and, in cluster mode, which Leases this replica holds
// (`meshgate_control_leader{election}`). Served on the debug port at `/metrics`, as istiod serves its
// monitoring port (15014).

import { X509Certificate } from 'node:crypto';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** istiod's push trigger reasons that a change of configuration can carry. */
export type PushReason = 'endpoint' | 'service' | 'config' | 'secret' | 'namespace' | 'global';

/** The reason a change to a resource of this kind triggers a push, as istiod names it. */
export function pushReasonOf(kind: string): PushReason {
  switch (kind) {
    case 'Endpoints':
    case 'EndpointSlice':
    case 'Pod':
    case 'WorkloadEntry':
      return 'endpoint';
    case 'Service':
    case 'ServiceEntry':
      return 'service';
    case 'Secret':
      return 'secret';
    case 'Namespace':
      return 'namespace';
    // The mesh config (the `istio` ConfigMap) changes everything.
    case 'ConfigMap':
      return 'global';
    default:
      return 'config';
  }
}

/** The version istio_build reports (meshgate's own). */
const BUILD_TAG = '0.1.0';

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
  private readonly pushTime: Histogram<'type'>;
  private readonly configSize: Histogram<'type'>;
  private readonly triggers: Counter<'type'>;
  private readonly leaderships: Gauge<'election'>;

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
    // istiod's buckets for both (seconds; bytes: 10K, 1M, 4M, 10M, 40M).
    this.pushTime = new Histogram({ name: 'pilot_xds_push_time', help: 'Seconds one push to one proxy takes, from computing what it gets to having written it, by type (`sotw` or `delta`).', labelNames: ['type'], buckets: [0.01, 0.1, 1, 3, 5, 10, 20, 30], registers });
    this.configSize = new Histogram({ name: 'pilot_xds_config_size_bytes', help: 'Bytes of configuration pushed to a proxy, by type (`sotw` or `delta`).', labelNames: ['type'], buckets: [1, 10000, 1000000, 4000000, 10000000, 40000000], registers });
    this.triggers = new Counter({ name: 'pilot_push_triggers', help: 'Pushes triggered, by the reason for the push (what kind of resource changed).', labelNames: ['type'], registers });
    // istiod has no series for it; its log says when a lock is obtained or lost (kube-leader-election.ts).
    this.leaderships = new Gauge({ name: 'meshgate_control_leader', help: 'Whether this replica holds the Lease of an election (1) or not (0), by the Lease\'s name.', labelNames: ['election'], registers });
    this.connectedProxies.set(0);
    this.addIstiodSeries(registers);
  }

  // Further istiod series, kept apart from the push counters above (docs/reference/metrics.md).
  private authFailures!: Counter;
  private injections!: Record<'requests' | 'success' | 'skip' | 'failure', Counter>;
  private rootNotAfter: number | undefined;
  private services: () => number = () => 0;

  private addIstiodSeries(registers: Registry[]): void {
    new Gauge({ name: 'istio_build', help: 'Istio component build info.', labelNames: ['component', 'tag'], registers }).set({ component: 'pilot', tag: BUILD_TAG }, 1);
    this.authFailures = new Counter({ name: 'citadel_server_authentication_failure_count', help: 'Certificate signing requests whose caller could not be authenticated.', registers });
    const metrics = this;
    new Gauge({
      name: 'citadel_server_root_cert_expiry_timestamp', help: 'When the root certificate expires (Unix seconds).', registers,
      collect() {
        if (metrics.rootNotAfter !== undefined) this.set(metrics.rootNotAfter / 1000);
      },
    });
    new Gauge({
      name: 'citadel_server_root_cert_expiry_seconds', help: 'Seconds until the root certificate expires.', registers,
      collect() {
        if (metrics.rootNotAfter !== undefined) this.set(Math.round((metrics.rootNotAfter - Date.now()) / 1000));
      },
    });
    new Gauge({
      name: 'pilot_services', help: 'Services known to the control plane.', registers,
      collect() {
        this.set(metrics.services());
      },
    });
    const counter = (name: string, help: string): Counter => new Counter({ name, help, registers });
    this.injections = {
      requests: counter('sidecar_injection_requests_total', 'Pods the injection webhook was asked about.'),
      success: counter('sidecar_injection_success_total', 'Pods given a sidecar.'),
      skip: counter('sidecar_injection_skip_total', 'Pods admitted without a sidecar.'),
      failure: counter('sidecar_injection_failure_total', 'Admission reviews refused.'),
    };
  }

  /** The trust bundle proxies are given: its first certificate's expiry. */
  rootCertificate(pem: string): void {
    try {
      this.rootNotAfter = new Date(new X509Certificate(pem).validTo).getTime();
    } catch {
      this.rootNotAfter = undefined;
    }
  }

  /** How to count the services of the current configuration, read at scrape time. */
  countServices(count: () => number): void {
    this.services = count;
  }

  /** This replica gained (true) or lost the Lease of `election`. */
  leader(election: string, leading: boolean): void {
    this.leaderships.set({ election }, leading ? 1 : 0);
  }

  certificateAuthenticationFailed(): void {
    this.authFailures.inc();
  }

  injection(outcome: 'success' | 'skip' | 'failure'): void {
    this.injections.requests.inc();
    this.injections[outcome].inc();
  }

  proxyConnected(): void {
    this.connectedProxies.set(++this.connected);
  }

  proxyDisconnected(): void {
    this.connectedProxies.set((this.connected = Math.max(0, this.connected - 1)));
  }

  /** One push written to one proxy: its size in bytes and how long it took (seconds), when known. */
  pushed(kind: 'sotw' | 'delta', bytes?: number, seconds?: number): void {
    this.pushes.inc({ type: kind });
    if (bytes !== undefined) this.configSize.observe({ type: kind }, bytes);
    if (seconds !== undefined) this.pushTime.observe({ type: kind }, seconds);
  }

  /** A new configuration version is going out, for these reasons (each counted once per version). */
  pushTriggered(reasons: Iterable<PushReason>): void {
    for (const type of reasons) this.triggers.inc({ type });
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
