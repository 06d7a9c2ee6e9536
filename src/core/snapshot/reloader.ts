// Connects a ConfigSource to a SnapshotHolder: every whole set it emits is built into a snapshot
// and swapped in. Build problems are logged once each; the serving snapshot is never lost.

import type { Logger } from 'pino';
import { formatProblem, type Problem } from '../config/problem.js';
import type { ConfigSource, ConfigUpdate } from '../sources/source.js';
import { buildSnapshot, type SnapshotDeps } from './build.js';
import type { SnapshotHolder } from './holder.js';
import type { ProxyRole } from './snapshot.js';

export class Reloader {
  #reported = new Set<string>();

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
    try {
      const { snapshot, problems } = buildSnapshot(update, this.role, this.deps, this.holder.current(), this.holder.nextVersion());
      this.holder.swap(snapshot);
      this.#report(problems);
      this.log.info(
        { version: snapshot.version, resources: snapshot.resources.length, listeners: [...snapshot.listeners.keys()], errors: problems.filter((p) => p.severity === 'error').length },
        'configuration applied',
      );
    } catch (err) {
      // buildSnapshot does not throw for bad input; reaching here is a bug. Keep serving what we have.
      this.log.error({ err }, 'building the configuration failed; the last good configuration keeps serving');
    }
  }

  /** Each distinct problem once, until it goes away and comes back. */
  #report(problems: readonly Problem[]): void {
    const now = new Set<string>();
    for (const p of problems) {
      const line = formatProblem(p);
      now.add(line);
      if (this.#reported.has(line)) continue;
      if (p.severity === 'error') this.log.error({ problem: p }, line);
      else this.log.warn({ problem: p }, line);
    }
    this.#reported = now;
  }

  close(): Promise<void> {
    return this.source.close();
  }
}
