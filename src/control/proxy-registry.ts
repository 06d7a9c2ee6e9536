// The proxies the control plane knows: which identity each subscribed as, whether its stream is
// open, which configuration version was sent to it, which one it runs (acknowledged), and the last
// one it refused and why. This is what the debug port's `GET /debug/proxies` shows, so a person can see a rollout land
// or find the proxy that disagrees with it.

import type { Logger } from 'pino';
import { formatProblem, type Problem } from '../core/config/problem.js';
import { isRecord } from '../core/config/load.js';
import type { ControlMetrics } from './control-metrics.js';
import type { ProxyMeta } from './proxy-scope.js';

/** One proxy as `GET /debug/proxies` lists it. */
export interface ProxyStatus {
  readonly id: string;
  /** The SPIFFE id its token authenticated as. */
  readonly identity: string;
  /** `sidecar` or `gateway`, as it subscribed. */
  readonly role: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly connected: boolean;
  readonly address: string;
  readonly connectedAt: string;
  readonly disconnectedAt: string | null;
  readonly sentVersion: string | null;
  readonly acknowledgedVersion: string | null;
  readonly rejectedVersion: string | null;
  /** Why `rejectedVersion` was refused, one formatted problem per entry. */
  readonly rejectedBecause: readonly string[];
}

/** One subscription of a proxy; a later subscription with the same id replaces it. */
export interface ProxySession {
  readonly id: string;
  readonly identity: string;
  /** Role and labels as it subscribed, namespace from its identity: what decides its subset. */
  readonly meta: ProxyMeta;
  readonly address: string;
  readonly connectedAt: Date;
  disconnectedAt: Date | undefined;
  sentVersion: string | undefined;
  acknowledgedVersion: string | undefined;
  rejectedVersion: string | undefined;
  rejectedBecause: string[];
  /** When `sentVersion` was sent, for the convergence time. */
  sentAt?: number;
}

export type AckOutcome = { ok: true } | { ok: false; status: number; message: string };

const MAX_PROBLEMS = 50;
/**
 * Disconnected proxies listed at most, the first to leave forgotten first: any workload's token may
 * open streams under ids of its choosing, and each closed one (with up to 100 KB of refusal reasons)
 * would otherwise stay for `forgetAfterMs`, so cycling ids grew the control plane without bound.
 * istiod keeps no disconnected proxy at all.
 */
const MAX_DISCONNECTED = 1000;
const MAX_TEXT = 2000;

export interface ProxyRegistryOptions {
  readonly log: Logger;
  readonly now?: () => Date;
  /** A disconnected proxy is listed this long, then forgotten (default one hour). */
  readonly forgetAfterMs?: number;
  /** At most this many disconnected proxies are listed (default 1000); the earliest to leave go first. */
  readonly maxDisconnected?: number;
  readonly metrics?: ControlMetrics;
}

export class ProxyRegistry {
  readonly #sessions = new Map<string, ProxySession>();
  readonly #log: Logger;
  readonly #now: () => Date;
  readonly #forgetAfterMs: number;
  readonly #maxDisconnected: number;
  /** The ids of disconnected sessions, in the order they disconnected. */
  readonly #disconnected = new Set<string>();
  readonly #metrics: ControlMetrics | undefined;

  constructor(opts: ProxyRegistryOptions) {
    this.#metrics = opts.metrics;
    this.#log = opts.log;
    this.#now = opts.now ?? (() => new Date());
    this.#forgetAfterMs = opts.forgetAfterMs ?? 3600_000;
    this.#maxDisconnected = opts.maxDisconnected ?? MAX_DISCONNECTED;
  }

  /**
   * A new subscription. Refused while another identity holds the id on an open stream (one proxy
   * must not take over another's record); the same identity subscribing again replaces its session,
   * and what it had acknowledged carries over (the proxy still runs it).
   */
  connect(id: string, identity: string, address: string, meta: ProxyMeta): { ok: true; session: ProxySession; replaced: ProxySession | undefined } | { ok: false; message: string } {
    this.#forget();
    const old = this.#sessions.get(id);
    if (old && old.identity !== identity && old.disconnectedAt === undefined) {
      return { ok: false, message: `proxy id ${id} is connected as ${old.identity}` };
    }
    const carried = old?.identity === identity ? old : undefined;
    const session: ProxySession = {
      id,
      identity,
      meta,
      address,
      connectedAt: this.#now(),
      disconnectedAt: undefined,
      sentVersion: undefined,
      acknowledgedVersion: carried?.acknowledgedVersion,
      rejectedVersion: carried?.rejectedVersion,
      rejectedBecause: carried?.rejectedBecause ?? [],
    };
    this.#sessions.set(id, session);
    this.#disconnected.delete(id);
    this.#metrics?.proxyConnected();
    return { ok: true, session, replaced: old && old.disconnectedAt === undefined ? old : undefined };
  }

  disconnect(session: ProxySession): void {
    if (session.disconnectedAt) return;
    session.disconnectedAt = this.#now();
    this.#metrics?.proxyDisconnected();
    // A session another stream under its id replaced is no longer listed: nothing to remember.
    if (this.#sessions.get(session.id) !== session) return;
    this.#disconnected.add(session.id);
    for (const oldest of this.#disconnected) {
      if (this.#disconnected.size <= this.#maxDisconnected) break;
      this.#disconnected.delete(oldest);
      this.#sessions.delete(oldest);
    }
  }

  /** `kind`: the whole subset (`sotw`) or what changed in it (`delta`); its size and the seconds the push took, for the metrics. */
  sent(session: ProxySession, version: string, kind: 'sotw' | 'delta', bytes?: number, seconds?: number): void {
    session.sentVersion = version;
    session.sentAt = performance.now();
    this.#metrics?.pushed(kind, bytes, seconds);
  }

  /** `body` is the parsed JSON of an acknowledgement; `identity` the caller's. */
  acknowledge(identity: string, body: unknown): AckOutcome {
    if (!isRecord(body) || typeof body.proxy !== 'string' || typeof body.version !== 'string' || typeof body.accepted !== 'boolean') {
      return { ok: false, status: 400, message: 'expected {proxy, version, accepted, problems?}' };
    }
    const session = this.#sessions.get(body.proxy);
    if (!session) return { ok: false, status: 404, message: `no proxy ${body.proxy} has subscribed` };
    if (session.identity !== identity) return { ok: false, status: 403, message: `proxy ${body.proxy} subscribed as ${session.identity}` };
    const fields = { proxy: session.id, identity, version: body.version };
    if (body.accepted) {
      if (session.acknowledgedVersion !== body.version) {
        this.#log.info(fields, 'proxy applied configuration');
        this.#metrics?.acknowledged(session.sentVersion === body.version && session.sentAt !== undefined ? (performance.now() - session.sentAt) / 1000 : undefined);
      }
      session.acknowledgedVersion = body.version;
      return { ok: true };
    }
    const why = problemLines(body.problems);
    if (session.rejectedVersion !== body.version) this.#metrics?.rejected();
    session.rejectedVersion = body.version;
    session.rejectedBecause = why;
    this.#log.warn({ ...fields, problems: why, running: session.acknowledgedVersion ?? null }, 'proxy refused configuration; it keeps running its current one');
    return { ok: true };
  }

  list(): ProxyStatus[] {
    this.#forget();
    return [...this.#sessions.values()]
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
      .map((s) => ({
        id: s.id,
        identity: s.identity,
        role: s.meta.role,
        labels: { ...s.meta.labels },
        connected: s.disconnectedAt === undefined,
        address: s.address,
        connectedAt: s.connectedAt.toISOString(),
        disconnectedAt: s.disconnectedAt?.toISOString() ?? null,
        sentVersion: s.sentVersion ?? null,
        acknowledgedVersion: s.acknowledgedVersion ?? null,
        rejectedVersion: s.rejectedVersion ?? null,
        rejectedBecause: [...s.rejectedBecause],
      }));
  }

  #forget(): void {
    const now = this.#now().getTime();
    for (const [id, s] of this.#sessions) {
      if (s.disconnectedAt && now - s.disconnectedAt.getTime() > this.#forgetAfterMs) {
        this.#sessions.delete(id);
        this.#disconnected.delete(id);
      }
    }
  }
}

/** What a proxy said was wrong, as `file:line resource field: message` lines; bounded, whatever it sent. */
function problemLines(v: unknown): string[] {
  if (!Array.isArray(v)) return [];
  return v.slice(0, MAX_PROBLEMS).map((p) => {
    if (!isRecord(p)) return cut(String(p));
    const problem: Problem = {
      severity: p.severity === 'warning' ? 'warning' : 'error',
      file: cut(String(p.file ?? '')),
      line: typeof p.line === 'number' ? p.line : 0,
      resource: cut(String(p.resource ?? '')),
      field: cut(String(p.field ?? '')),
      message: cut(String(p.message ?? '')),
    };
    return formatProblem(problem);
  });
}

function cut(s: string): string {
  return s.length > MAX_TEXT ? `${s.slice(0, MAX_TEXT)}…` : s;
}
