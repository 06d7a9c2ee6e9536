// Where a proxy's file access logs go: each path its configuration names gets one asynchronous
// destination (pino's SonicBoom), opened when a line first goes to it and kept for the next
// snapshots. `/dev/stdout` is the proxy's `--access-log`: stdout by default, or the file it names, or
// nowhere with `off`; `/dev/stderr` is stderr. A file that cannot be opened or written is said once
// on the event log and its lines are dropped: a log never stops traffic.

import { pino } from './pino.js';
import { STDOUT } from './access-log-formats.js';
import type { EventLog } from './export-failures.js';

type Destination = ReturnType<typeof pino.destination>;

export class AccessLogFiles {
  readonly #stdout: string;
  readonly #events: EventLog | undefined;
  readonly #open = new Map<string, Destination | null>();

  /** `stdout`: `off`, `stdout` or a file path, the `--access-log` flag. */
  constructor(stdout: string, events?: EventLog) {
    this.#stdout = stdout;
    this.#events = events;
  }

  /** Whether lines for `path` go anywhere: a proxy run with `--access-log off` formats none of its `/dev/stdout` lines. */
  accepts(path: string): boolean {
    return (path === STDOUT ? this.#stdout : path) !== 'off' && this.#open.get(path) !== null;
  }

  write(path: string, line: string): void {
    let dest = this.#open.get(path);
    if (dest === undefined) dest = this.#openPath(path);
    dest?.write(line);
  }

  #openPath(path: string): Destination | null {
    const target = path === STDOUT ? this.#stdout : path;
    let dest: Destination | null = null;
    if (target !== 'off') {
      const fd = target === 'stdout' ? 1 : target === '/dev/stderr' ? 2 : undefined;
      dest = pino.destination({ dest: fd ?? target, sync: false, mkdir: fd === undefined });
      let said = false;
      dest.on('error', (err: Error) => {
        if (said) return;
        said = true;
        this.#events?.warn({ path: target, error: err.message }, 'access log file cannot be written; its lines are dropped');
        this.#open.set(path, null);
      });
    }
    this.#open.set(path, dest);
    return dest;
  }

  flush(): void {
    for (const dest of this.#open.values()) {
      // Before a file is open there is nothing buffered to lose.
      try {
        dest?.flushSync();
      } catch {
        /* not ready yet */
      }
    }
  }
}
