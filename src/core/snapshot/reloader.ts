// Connects a ConfigSource to a SnapshotHolder: every whole set it emits is built into a snapshot
// and swapped in. Build problems and the analyzers' findings are logged once each, just after the
// swap (the analyzers run then, not before serving); the serving snapshot is never lost. A set
// that asks to be acknowledged (from a control plane) is all or nothing: with any error it is
// refused, the current snapshot keeps serving, and the refusal goes back with the errors.

import type { Logger } from 'pino';
import { formatProblem, hasErrors, type Problem } from '../config/problem.js';
import type { ConfigOutcome, ConfigSource, ConfigUpdate } from '../sources/source.js';
import { buildSnapshot, type SnapshotDeps } from './build.js';
import type { SnapshotHolder } from './holder.js';
import type { ProxyRole, Snapshot } from './snapshot.js';

export class Reloader {
  #reported = new Set<string>();
  #unreported: Snapshot[] = [];
  #reporting: NodeJS.Immediate | undefined;

  constructor(
    private readonly source: ConfigSource,
    private readonly holder: SnapshotHolder,
    private readonly role: ProxyRole,
    private readonly deps: SnapshotDeps,
    private readonly log: Logger,
  ) {}

  start(): Promise<void> {
    return this.source.start((u) => this.apply(u));
  }

  apply(update: ConfigUpdate): void {
    if (update.error) {
      this.log.error({ err: update.error, source: this.source.description }, 'configuration source failed; the last good configuration keeps serving');
      return;
    }
    const ack = update.acknowledge;
    let outcome: ConfigOutcome;
    try {
      outcome = this.#build(update, ack !== undefined);
    } catch (err) {
      // buildSnapshot does not throw for bad input; reaching here is a bug. Keep serving what we have.
      this.log.error({ err }, 'building the configuration failed; the last good configuration keeps serving');
      const message = `internal error while building: ${(err as Error)?.message ?? String(err)}`;
      outcome = { accepted: false, problems: [{ severity: 'error', file: '', line: 0, resource: '', field: '', message }] };
    }
    ack?.(outcome);
  }

  #build(update: ConfigUpdate, allOrNothing: boolean): ConfigOutcome {
    const { snapshot, problems } = buildSnapshot(update, this.role, this.deps, this.holder.current(), this.holder.nextVersion());
    if (allOrNothing && hasErrors(problems)) {
      const errors = problems.filter((p) => p.severity === 'error');
      this.log.error(
        { source: this.source.description, errors: errors.map(formatProblem), serving: this.holder.current()?.version ?? null },
        'configuration refused: it has errors here although its sender accepted it; the current configuration keeps serving',
      );
      return { accepted: false, problems: errors };
    }
    this.holder.swap(snapshot);
    this.#reportAfterSwap(snapshot);
    this.log.info(
      { version: snapshot.version, resources: snapshot.resources.length, listeners: [...snapshot.listeners.keys()], errors: problems.filter((p) => p.severity === 'error').length },
      'configuration applied',
    );
    return { accepted: true };
  }

  /**
   * Reading snapshot.problems runs the analyzers (build.ts): done once the swap is over, so that a
   * snapshot serves before its findings exist. Every snapshot swapped in is reported, in order.
   */
  #reportAfterSwap(snapshot: Snapshot): void {
    this.#unreported.push(snapshot);
    this.#reporting ??= setImmediate(() => {
      this.#reporting = undefined;
      for (const s of this.#unreported.splice(0)) this.#report(s.problems);
    });
  }

  /** Each distinct problem once, until it goes away and comes back. */
  #report(problems: readonly Problem[]): void {
    const now = new Set<string>();
    for (const p of problems) {
      const line = formatProblem(p);
      now.add(line);
      if (this.#reported.has(line)) continue;
      if (p.severity === 'error') this.log.error({ problem: p }, line);
      else if (p.severity === 'warning') this.log.warn({ problem: p }, line);
      else this.log.info({ problem: p }, line);
    }
    this.#reported = now;
  }

  close(): Promise<void> {
    clearImmediate(this.#reporting);
    this.#reporting = undefined;
    this.#unreported = [];
    return this.source.close();
  }
}
