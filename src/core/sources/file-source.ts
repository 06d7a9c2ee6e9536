// FileSource: a folder of YAML/JSON as a ConfigSource. It watches the folder and emits the whole
// resource set again after each burst of changes (debounced), never a delta. Only the files that
// changed are read and parsed again (ConfigFolder); a poll of an unchanged folder only stats its files.

import { watch, type FSWatcher } from 'node:fs';
import { ConfigFolder } from './config-folder.js';
import type { ConfigSource, ConfigUpdate } from './source.js';

export interface FileSourceOptions {
  readonly dir: string;
  /** How long a burst of file events may last before reloading. */
  readonly debounceMs?: number;
  /** A safety net for file systems where events get lost (network mounts): reload this often anyway. */
  readonly pollMs?: number;
}

export class FileSource implements ConfigSource {
  readonly #dir: string;
  readonly #debounceMs: number;
  readonly #pollMs: number;
  #watcher: FSWatcher | undefined;
  #timer: NodeJS.Timeout | undefined;
  #poll: NodeJS.Timeout | undefined;
  #loading: Promise<void> | undefined;
  #again = false;
  #closed = false;
  readonly #folder: ConfigFolder;

  constructor(opts: FileSourceOptions) {
    this.#dir = opts.dir;
    this.#debounceMs = opts.debounceMs ?? 100;
    this.#pollMs = opts.pollMs ?? 5000;
    this.#folder = new ConfigFolder(opts.dir);
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
      if ((!changed && !first) || this.#closed) return;
      first = false;
      onUpdate(result);
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
    this.#watcher?.close();
    this.#watcher = undefined;
    await this.#loading;
  }

  destroy(): void {
    void this.close();
  }
}
