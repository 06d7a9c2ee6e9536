// What an exporter to a collector says when the collector is not there: the batch processors of
// OpenTelemetry's SDK drop a batch that fails and carry on, and report it nowhere a proxy's operator
// looks (the SDK's diagnostic logger, off). A collector that is down fails every batch, a line a
// second from every proxy, so the first failure is said at once and the rest at most once a minute,
// with how many batches failed in between. Closing waits a bounded time for the last batch, for the
// same collector must not hold a proxy's drain.

import type { ExportResult } from '@opentelemetry/core';

/** Where the proxy's events go (its pino logger, or a child of it). */
export interface EventLog {
  warn(o: object, msg: string): void;
}

/** An exporter of the SDK: spans or log records, batched, one callback per batch. */
interface BatchExporter<T> {
  export(items: T[], done: (r: ExportResult) => void): void;
}

export const FAILURE_REPORT_INTERVAL_MS = 60_000;

/** The exporter, its failures said on `log` (rate-limited): what `what` names, to where `to` says. */
export function reportingFailures<T, E extends BatchExporter<T>>(exporter: E, what: string, to: string, log: EventLog | undefined, now: () => number = Date.now): E {
  if (!log) return exporter;
  const inner = exporter.export.bind(exporter);
  let lastSaid = -Infinity;
  let unsaid = 0;
  exporter.export = (items: T[], done: (r: ExportResult) => void): void => {
    inner(items, (r) => {
      // ExportResultCode.SUCCESS is 0.
      if (r.code !== 0) {
        unsaid++;
        const t = now();
        if (t - lastSaid >= FAILURE_REPORT_INTERVAL_MS) {
          log.warn({ to, failedBatches: unsaid, dropped: items.length, error: r.error?.message ?? 'failed' }, `${what} export failed; dropping the batch (said at most once a minute)`);
          lastSaid = t;
          unsaid = 0;
        }
      }
      done(r);
    });
  };
  return exporter;
}

/** How long closing waits for the last batch to go out. */
export const CLOSE_WAIT_MS = 2000;

/** Waits for `p`, or CLOSE_WAIT_MS, whichever comes first. */
export async function settledWithin(p: Promise<unknown>): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([p, new Promise<void>((resolve) => (timer = setTimeout(resolve, CLOSE_WAIT_MS).unref()))]);
  clearTimeout(timer);
}
