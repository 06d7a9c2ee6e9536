// The gateway's listening ports, one port listener per listen port as Envoy has one listener per
// port. `--ports` is the gateway Service (port=targetPort): those listen for the gateway's whole life.
// A Gateway server port that no entry maps is listened on as-is, as Istio binds it (docs/reference/routing.md),
// for as long as a configuration has servers there (connections still open when it goes get a few
// seconds to finish). Such a port that cannot be opened is logged with the Gateway servers that
// wanted it and tried again with the next configuration; every other port keeps serving.

import type { Logger } from 'pino';
import { listenFor, ListenError } from '../core/proxy/listen.js';
import type { Listener } from '../core/routing/types.js';
import type { Snapshot } from '../core/snapshot/snapshot.js';
import type { PortListener } from './port-listener.js';

export interface ListenerSetDeps {
  /** `--ports`: gateway Service port → port to listen on (0 = any free port). */
  readonly ports: ReadonlyMap<number, number>;
  readonly host: string;
  /** A port listener for the Service ports whose targetPort it is (none: a server port as-is). */
  create(servicePorts: readonly number[]): PortListener;
  readonly log: Logger;
}

/** How long connections on a port the configuration no longer has may finish before they are cut. */
const REMOVED_PORT_GRACE_MS = 5000;

export class ListenerSet {
  /** Gateway port → the port it listens on. */
  readonly listenPorts = new Map<number, number>();
  /** By listen port. */
  readonly #open = new Map<number, PortListener>();
  /** Listen ports opened for unmapped server ports; closed when no configuration wants them. */
  readonly #asIs = new Set<number>();
  /** Unmapped ports whose last attempt failed (logged once until they open or leave the configuration). */
  readonly #failed = new Set<number>();
  /** Listeners of removed ports, closing. */
  readonly #closing = new Map<PortListener, Promise<void>>();
  #queue: Promise<void> = Promise.resolve();
  #closed = false;

  constructor(private readonly deps: ListenerSetDeps) {}

  /** Opens the `--ports` listeners (a failure fails the start) and returns Service port → targetPort as bound. */
  async listenServicePorts(): Promise<ReadonlyMap<number, number>> {
    // Service ports sharing a targetPort share its listener; each 0 asks for a port of its own.
    const groups = new Map<number | string, number[]>();
    for (const [port, target] of this.deps.ports) {
      const key = target === 0 ? `any free port for ${port}` : target;
      groups.set(key, [...(groups.get(key) ?? []), port]);
    }
    for (const servicePorts of groups.values()) {
      const target = this.deps.ports.get(servicePorts[0]!)!;
      const l = this.deps.create(servicePorts);
      const what = `Gateway port ${servicePorts.join(', ')} (--ports ${servicePorts.map((p) => `${p}=${target}`).join(',')})`;
      const bound = await listenFor(what, this.deps.host, target, () => l.listen(target, this.deps.host));
      this.#open.set(bound, l);
      for (const p of servicePorts) this.listenPorts.set(p, bound);
    }
    return new Map(this.listenPorts);
  }

  /** Opens and closes the as-is listeners `snapshot` asks for; calls run one after another. */
  sync(snapshot: Snapshot): Promise<void> {
    this.#queue = this.#queue.then(() => this.#reconcile(snapshot)).catch((err: unknown) => this.deps.log.error({ err }, 'updating the listening ports failed'));
    return this.#queue;
  }

  async #reconcile(snapshot: Snapshot): Promise<void> {
    for (const [port, listener] of snapshot.listeners) {
      if (this.#closed) return;
      if (!this.#open.has(port)) await this.#openAsIs(port, listener);
    }
    for (const port of [...this.#asIs]) {
      if (snapshot.listeners.has(port)) continue;
      const l = this.#open.get(port)!;
      this.#open.delete(port);
      this.#asIs.delete(port);
      this.deps.log.info({ port }, `no Gateway server uses port ${port} any more: its listener is closed`);
      // It stops accepting at once; keep-alive clients would otherwise keep it serving for ever.
      const cut = setTimeout(() => l.destroy(), REMOVED_PORT_GRACE_MS);
      this.#closing.set(
        l,
        l.close().finally(() => {
          clearTimeout(cut);
          this.#closing.delete(l);
        }),
      );
    }
    for (const port of this.#failed) if (!snapshot.listeners.has(port)) this.#failed.delete(port);
    this.#mapServerPorts(snapshot);
  }

  /** `listenPorts`: the `--ports` entries, and each other server port whose listener is open. */
  #mapServerPorts(snapshot: Snapshot): void {
    const asIs = new Set<number>();
    for (const [listenPort, l] of snapshot.listeners) {
      if (!this.#open.has(listenPort)) continue;
      for (const s of l.servers) if (!this.deps.ports.has(s.port)) asIs.add(s.port);
    }
    for (const port of this.listenPorts.keys()) if (!this.deps.ports.has(port) && !asIs.has(port)) this.listenPorts.delete(port);
    for (const port of asIs) this.listenPorts.set(port, port);
  }

  async #openAsIs(port: number, listener: Listener): Promise<void> {
    const servers = listener.servers.map((s) => `${s.gateway} server[${s.serverIndex}] (${s.portName})`);
    const what = `Gateway ${servers.join(', ')} on port ${port}`;
    const l = this.deps.create([]);
    try {
      await listenFor(what, this.deps.host, port, () => l.listen(port, this.deps.host));
    } catch (err) {
      if (!this.#failed.has(port)) {
        this.#failed.add(port);
        const message = err instanceof ListenError ? err.message : String(err);
        this.deps.log.error({ port, servers }, `${message}; these servers are not served (every other port keeps serving), and the port is tried again with the next configuration`);
      }
      return;
    }
    if (this.#closed) return l.destroy();
    this.#failed.delete(port);
    this.#open.set(port, l);
    this.#asIs.add(port);
    this.deps.log.info(
      { port, servers },
      `Gateway port ${port} is not in --ports: listening on ${port} as-is, as Istio does for a port its gateway Service does not expose; to listen elsewhere, add ${port}=LISTEN_PORT to --ports`,
    );
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.#queue;
    await Promise.all([...[...this.#open.values()].map((l) => l.close()), ...this.#closing.values()]);
  }

  destroy(): void {
    this.#closed = true;
    for (const l of [...this.#open.values(), ...this.#closing.keys()]) l.destroy();
  }
}
