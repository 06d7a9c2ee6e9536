// Re-serves one ConfigSource to many proxies. Each subscriber gets a long-lived NDJSON response: a
// `hello` (with the heartbeat period, so the proxy knows when silence means a dead control plane),
// its whole subset at once (`config`: only what concerns it, proxy-scope.ts), then on every change
// only what changed in that subset (`delta`), and nothing when the change does not concern it.
// Proxies of one kind share one view (scoped-view.ts), so a push computes each subset once.
// Bursts of source updates become one version at most `debounceMs` after the first. A proxy that
// reads slowly is never sent a queue of deltas: while its socket is backed up nothing more is
// written, and when it drains it gets its whole current subset.

import type { ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { analyze } from '../core/analyze/run.js';
import { formatProblem, type Problem } from '../core/config/problem.js';
import type { ConfigSource, ConfigUpdate } from '../core/sources/source.js';
import type { StreamMessage } from '../core/sources/control-plane-wire.js';
import { publishableSet, type PublishedSet, type Validate } from './config-set.js';
import type { ProxyRegistry, ProxySession } from './proxy-registry.js';
import { ScopeIndex, scopeKey } from './proxy-scope.js';
import { ScopedView, type ViewDelta } from './scoped-view.js';
import { EndpointFailures, sendEndpointFailure } from '../core/proxy/respond.js';
import { pushReasonOf, type ControlMetrics, type PushReason } from './control-metrics.js';

export interface ConfigDistributorOptions {
  readonly source: ConfigSource;
  readonly registry: ProxyRegistry;
  readonly log: Logger;
  /** How long after the first change of a burst a new version goes out (default 100 ms). */
  readonly debounceMs?: number;
  /** How often every stream gets a heartbeat line (default 5 s). */
  readonly heartbeatMs?: number;
  /** What decides which resources may be sent (default validateAll); a seam for version-skew tests. */
  readonly validate?: Validate;
  /** Where the reasons of each new version are counted (pilot_push_triggers). */
  readonly metrics?: Pick<ControlMetrics, 'pushTriggered'>;
}

interface Stream {
  readonly session: ProxySession;
  readonly res: ServerResponse;
  view: ScopedView | undefined;
  /** The version last written to it; a delta goes out only on top of it. */
  version: string | undefined;
  blocked: boolean;
  /** A change came while the socket was backed up: the whole subset goes out once it drains. */
  resync: boolean;
}

/**
 * The cross-resource analyzers (the ones proxies run too) only report, never refuse, and cost far
 * more than a push at scale: they run this long after the last push of a burst, not in its way.
 */
const ANALYZE_QUIET_MS = 5000;

const HEARTBEAT_LINE = `${JSON.stringify({ type: 'heartbeat' } satisfies StreamMessage)}\n`;

export class ConfigDistributor {
  readonly #opts: ConfigDistributorOptions;
  readonly #log: Logger;
  readonly #debounceMs: number;
  readonly #heartbeatMs: number;
  readonly #streams = new Map<string, Stream>();
  readonly #views = new Map<string, { view: ScopedView; members: Set<Stream> }>();
  #current: PublishedSet | undefined;
  #index: ScopeIndex | undefined;
  #latest: ConfigUpdate | undefined;
  #timer: NodeJS.Timeout | undefined;
  #analysis: NodeJS.Timeout | undefined;
  /** The analyzers' findings, on `#current` once they have run on it (until then, on the set before). */
  #findings: readonly Problem[] = [];
  #heartbeat: NodeJS.Timeout | undefined;
  #reported = new Set<string>();
  #closed = false;

  constructor(opts: ConfigDistributorOptions) {
    this.#opts = opts;
    this.#log = opts.log;
    this.#debounceMs = opts.debounceMs ?? 100;
    this.#heartbeatMs = opts.heartbeatMs ?? 5000;
  }

  /** Resolves once the source's first set has been validated and is ready to hand out. */
  async start(): Promise<void> {
    await this.#opts.source.start((u) => this.#updated(u));
    this.#heartbeat = setInterval(() => this.#beat(), this.#heartbeatMs);
    this.#heartbeat.unref();
  }

  /** The set handed out, its problems including the analyzers' findings once they have run. */
  get current(): PublishedSet | undefined {
    const c = this.#current;
    return c && this.#findings.length > 0 ? { ...c, problems: [...c.problems, ...this.#findings] } : c;
  }

  /** Opens `res` as the stream of `session`; `replaced` is the same proxy's previous stream, now ended. */
  open(session: ProxySession, res: ServerResponse, replaced: ProxySession | undefined): void {
    if (this.#closed) {
      this.#opts.registry.disconnect(session);
      sendEndpointFailure(res, EndpointFailures.shuttingDown, 'json', { connection: 'close' });
      return;
    }
    if (replaced) this.#streams.get(replaced.id)?.res.end();
    const stream: Stream = { session, res, view: undefined, version: undefined, blocked: false, resync: false };
    this.#streams.set(session.id, stream);
    // `connection: close`: the stream's connection ends with it rather than idling in a keep-alive pool.
    res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff', connection: 'close' });
    res.socket?.setNoDelay(true);
    res.on('close', () => {
      if (this.#streams.get(session.id) === stream) this.#streams.delete(session.id);
      if (stream.view) this.#views.get(stream.view.key)?.members.delete(stream);
      this.#opts.registry.disconnect(session);
      if (!this.#closed) this.#log.info({ proxy: session.id, identity: session.identity }, 'proxy stream closed');
    });
    const hello: StreamMessage = { type: 'hello', proxy: session.id, identity: session.identity, heartbeatMs: this.#heartbeatMs };
    this.#write(stream, `${JSON.stringify(hello)}\n`);
    this.#log.info({ proxy: session.id, identity: session.identity, address: session.address, version: this.#current?.version }, 'proxy subscribed');
    if (this.#current && this.#index) {
      this.#join(stream, this.#current, this.#index);
      this.#sendFull(stream);
    }
  }

  /** Connected proxies, and how many distinct subsets they receive. */
  get stats(): { proxies: number; views: number } {
    return { proxies: this.#streams.size, views: this.#views.size };
  }

  /** Attaches a stream to the view of its kind, computing that view when it is the first of its kind. */
  #join(stream: Stream, set: PublishedSet, index: ScopeIndex): void {
    const key = scopeKey(stream.session.meta);
    let slot = this.#views.get(key);
    if (!slot) {
      const view = new ScopedView(key, stream.session.meta);
      view.update(index, set);
      slot = { view, members: new Set() };
      this.#views.set(key, slot);
    }
    slot.members.add(stream);
    stream.view = slot.view;
  }

  /** Ends every stream (proxies keep what they have and resubscribe elsewhere or later) and stops the source. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#timer);
    clearTimeout(this.#analysis);
    clearInterval(this.#heartbeat);
    for (const s of this.#streams.values()) s.res.end();
    await this.#opts.source.close();
  }

  destroy(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    clearTimeout(this.#analysis);
    clearInterval(this.#heartbeat);
    for (const s of this.#streams.values()) s.res.destroy();
    this.#opts.source.destroy();
  }

  #updated(update: ConfigUpdate): void {
    if (this.#closed) return;
    if (update.error) {
      this.#log.error({ err: update.error, source: this.#opts.source.description }, 'configuration source failed; proxies keep the last set');
      return;
    }
    this.#latest = update;
    // The first set goes out at once: nothing is ready until it exists.
    if (!this.#current) return this.#publish();
    this.#timer ??= setTimeout(() => this.#publish(), this.#debounceMs);
  }

  #publish(): void {
    this.#timer = undefined;
    const update = this.#latest;
    this.#latest = undefined;
    if (!update || this.#closed) return;
    let next: PublishedSet;
    try {
      next = publishableSet(update, this.#current?.resources, this.#opts.validate);
    } catch (err) {
      // Validation never throws for bad input; this is a bug, and the set already out stays out.
      this.#log.error({ err }, 'preparing the configuration failed; proxies keep the last set');
      return;
    }
    if (next.version === this.#current?.version) return this.#report([...next.problems, ...this.#findings]);
    const first = this.#current === undefined;
    if (this.#current && this.#opts.metrics) this.#opts.metrics.pushTriggered(changeReasons(this.#current, next));
    const index = new ScopeIndex(next.resources);
    this.#current = next;
    // The first set's findings are said at once (nothing waits on a push yet); later ones after the burst.
    if (first) this.#analyze();
    else {
      // The last findings stand (and are not said again) until the analyzers have run on this set.
      this.#report([...next.problems, ...this.#findings]);
      clearTimeout(this.#analysis);
      this.#analysis = setTimeout(() => this.#analyze(), ANALYZE_QUIET_MS);
      this.#analysis.unref();
    }
    this.#index = index;
    let pushed = 0;
    for (const [key, slot] of this.#views) {
      // A kind of proxy none of which is connected any more is forgotten.
      if (slot.members.size === 0) {
        this.#views.delete(key);
        continue;
      }
      const started = performance.now();
      const delta = slot.view.update(index, next);
      if (!delta) continue;
      for (const s of slot.members) {
        this.#sendDelta(s, delta, started);
        pushed++;
      }
    }
    // Streams that subscribed before there was any set.
    for (const s of this.#streams.values()) {
      if (s.view) continue;
      this.#join(s, next, index);
      this.#sendFull(s);
      pushed++;
    }
    this.#log.info({ version: next.version, resources: next.resources.length, proxies: this.#streams.size, pushed, views: this.#views.size }, 'configuration version published');
  }

  #analyze(): void {
    this.#analysis = undefined;
    const set = this.#current;
    if (!set || this.#closed) return;
    this.#findings = analyze(set.resources);
    this.#report([...set.problems, ...this.#findings]);
  }

  /** `started`: when computing the delta (shared by the view's members) began, for the push time. */
  #sendDelta(stream: Stream, delta: ViewDelta, started: number): void {
    if (stream.blocked) {
      stream.resync = true;
      return;
    }
    // A proxy not at the delta's base (it subscribed mid-push, or its last write was skipped) gets the whole subset.
    if (stream.version !== delta.base) return this.#sendFull(stream);
    this.#write(stream, delta.line);
    stream.version = delta.version;
    this.#opts.registry.sent(stream.session, delta.version, 'delta', Buffer.byteLength(delta.line), (performance.now() - started) / 1000);
  }

  #sendFull(stream: Stream): void {
    const view = stream.view;
    if (!view) return;
    if (stream.blocked) {
      stream.resync = true;
      return;
    }
    const started = performance.now();
    const line = view.fullLine();
    this.#write(stream, line);
    stream.version = view.version;
    this.#opts.registry.sent(stream.session, view.version, 'sotw', Buffer.byteLength(line), (performance.now() - started) / 1000);
  }

  #write(stream: Stream, line: string): void {
    if (stream.res.writableEnded || stream.res.destroyed) return;
    if (stream.res.write(line)) return;
    stream.blocked = true;
    stream.res.once('drain', () => {
      stream.blocked = false;
      if (!stream.resync) return;
      stream.resync = false;
      this.#sendFull(stream);
    });
  }

  #beat(): void {
    for (const s of this.#streams.values()) if (!s.blocked) this.#write(s, HEARTBEAT_LINE);
  }

  /** Each distinct problem of the control plane's input once, until it goes away and comes back. */
  #report(problems: readonly Problem[]): void {
    const now = new Set<string>();
    for (const p of problems) {
      const line = formatProblem(p);
      now.add(line);
      if (this.#reported.has(line)) continue;
      if (p.severity === 'error') this.#log.error({ problem: p }, line);
      else this.#log.warn({ problem: p }, line);
    }
    this.#reported = now;
  }
}

/** The reasons, as istiod names them, of the change from one published set to the next. */
function changeReasons(previous: PublishedSet, next: PublishedSet): Set<PushReason> {
  const reasons = new Set<PushReason>();
  for (const [key, e] of next.entries) {
    const was = previous.entries.get(key);
    if (!was || (was !== e && !sameDigest(was.digest, e.digest))) reasons.add(pushReasonOf(e.resource.kind));
  }
  for (const key of previous.entries.keys()) if (!next.entries.has(key)) reasons.add(pushReasonOf(key.slice(0, key.indexOf('/'))));
  return reasons;
}

function sameDigest(a: Uint32Array, b: Uint32Array): boolean {
  return a[0] === b[0] && a[1] === b[1] && a[2] === b[2] && a[3] === b[3];
}
