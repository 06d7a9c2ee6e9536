// FileSource: a folder of YAML/JSON as a ConfigSource. It watches the folder and emits the whole
// resource set again after each burst of changes (debounced), never a delta. Only the files that
// changed are read and parsed again (ConfigFolder); a poll of an unchanged folder only stats its files.
//
// A file read while it is being written can be empty or cut short: `>` truncates before it writes,
// and a copy lands in pieces. Applied as read, that removes whatever the file held, and every request
// for those routes gets 404 until the next read. So a read in which some file holds fewer resources
// than the set now applied (fewer documents, none, or the file gone) is a possible partial write:
// it applies only once the folder has read the same for `settleMs`. A file emptied on purpose
// still applies, that much later, with a warning when it removes every resource.

import { watch, type FSWatcher } from 'node:fs';
import type { LoadResult } from '../config/load.js';
import type { Problem } from '../config/problem.js';
import { ConfigFolder } from './config-folder.js';
import type { ConfigSource, ConfigUpdate } from './source.js';

export interface FileSourceOptions {
  readonly dir: string;
  /** How long a burst of file events may last before reloading. */
  readonly debounceMs?: number;
  /** A safety net for file systems where events get lost (network mounts): reload this often anyway. */
  readonly pollMs?: number;
  /** How long a read that loses resources must stay the same before it applies (a partial write settles). */
  readonly settleMs?: number;
  /** The folder as already read (its files parsed), so the first read of the source only stats them. */
  readonly folder?: ConfigFolder;
}

/** Resources per file, to see which files lost some. */
function countByFile(resources: LoadResult['resources']): Map<string, number> {
  const counts = new Map<string, number>();
  for (const r of resources) counts.set(r.origin.file, (counts.get(r.origin.file) ?? 0) + 1);
  return counts;
}

export class FileSource implements ConfigSource {
  readonly #dir: string;
  readonly #debounceMs: number;
  readonly #pollMs: number;
  readonly #settleMs: number;
  #watcher: FSWatcher | undefined;
  #timer: NodeJS.Timeout | undefined;
  #poll: NodeJS.Timeout | undefined;
  #settle: NodeJS.Timeout | undefined;
  #loading: Promise<void> | undefined;
  #again = false;
  #closed = false;
  readonly #folder: ConfigFolder;
  /** Resources per file in the set last applied. */
  #applied = new Map<string, number>();
  /** Since when the folder has read as it does now, while that read loses resources and waits. */
  #pendingSince: number | undefined;

  constructor(opts: FileSourceOptions) {
    this.#dir = opts.dir;
    this.#debounceMs = opts.debounceMs ?? 100;
    this.#pollMs = opts.pollMs ?? 5000;
    this.#settleMs = opts.settleMs ?? 1000;
    this.#folder = opts.folder ?? new ConfigFolder(opts.dir);
  }

  get description(): string {
    return `folder ${this.#dir}`;
  }

  async start(onUpdate: (u: ConfigUpdate) => void): Promise<void> {
    let first = true;
    const reload = async (): Promise<void> => {
      if (this.#closed) return;
      const { result, changed } = await this.#folder.read();
      // Poll ticks and duplicate events must not rebuild an unchanged configuration.
      if ((!changed && !first && this.#pendingSince === undefined) || this.#closed) return;
      first = false;
      const counts = countByFile(result.resources);
      const lost = [...this.#applied].filter(([file, n]) => (counts.get(file) ?? 0) < n);
      let update: LoadResult = result;
      if (lost.length > 0) {
        const now = Date.now();
        // A write that goes on moves the mark.
        if (changed || this.#pendingSince === undefined) this.#pendingSince = now;
        const waited = now - this.#pendingSince;
        if (waited < this.#settleMs) {
          // Read again once it has had time to settle.
          clearTimeout(this.#settle);
          this.#settle = setTimeout(run, this.#settleMs - waited);
          return;
        }
        update = { ...result, problems: [...result.problems, ...lostWarnings(lost, counts, result.resources.length === 0, this.#settleMs)] };
      }
      this.#pendingSince = undefined;
      this.#applied = counts;
      onUpdate(update);
    };
    const run = (): void => {
      if (this.#loading) {
        this.#again = true;
        return;
      }
      this.#loading = reload()
        .catch((err: unknown) => onUpdate({ resources: [], problems: [], error: err as Error }))
        .finally(() => {
          this.#loading = undefined;
          if (this.#again) {
            this.#again = false;
            run();
          }
        });
    };
    const schedule = (): void => {
      clearTimeout(this.#timer);
      this.#timer = setTimeout(run, this.#debounceMs);
    };
    await reload();
    this.#watcher = watch(this.#dir, { persistent: false }, (_event, name) => {
      this.#folder.markChanged(name ?? undefined);
      schedule();
    });
    this.#watcher.on('error', () => schedule());
    this.#poll = setInterval(run, this.#pollMs);
    this.#poll.unref();
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    clearInterval(this.#poll);
    clearTimeout(this.#settle);
    this.#watcher?.close();
    this.#watcher = undefined;
    await this.#loading;
  }

  destroy(): void {
    void this.close();
  }
}

/** What a read that lost resources says once it applies: which files, and everything gone if so. */
function lostWarnings(lost: ReadonlyArray<readonly [string, number]>, counts: ReadonlyMap<string, number>, none: boolean, settleMs: number): Problem[] {
  return lost.map(([file, before]) => ({
    severity: 'warning',
    file,
    line: 0,
    resource: '',
    field: '',
    message:
      `had ${before} resource(s) and now has ${counts.get(file) ?? 0}; applied after the folder read the same for ${settleMs} ms` +
      (none ? ', which removes every resource and route' : ''),
  }));
}
