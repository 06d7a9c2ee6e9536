// Listing a collection the way client-go's reflector does: in pages (`limit`, then `metadata.continue`
// until the server sends none), so that a cluster of 50,000 Pods is never one JSON body held at once,
// nor one request long enough for the API server to time it out. Every page of one list is read from
// the same snapshot (the server keeps the first page's resourceVersion in the continue token), so the
// joined pages are one consistent list, and the watch resumes from its resourceVersion.
//
// A continue token lives only as long as the server's history behind it (etcd compacts about every
// 5 minutes); a page asked for after that is refused with 410 Gone (reason Expired). client-go's
// pager then lists everything again in one unpaginated request; this lists again from the first page
// instead (a fresh snapshot), so that memory stays one page at a time, and after a few expiries in a
// row it gives up with an error: the caller retries with back-off, and keeps what it had meanwhile.
// Only a complete list is ever returned.

import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { isRecord } from '../config/load.js';
import type { KubeObject } from './kube-objects.js';
import { KubeApiError, SharedConnection, kubeRequest, statusMessage } from './kube-request.js';

/** Objects per page, as client-go's pager asks by default. */
export const LIST_PAGE_SIZE = 500;

/** Lists begun again after an expired continue token before the list counts as failed. */
const EXPIRED_RESTARTS = 2;

/** A collection as the API server lists it (the pages joined). */
export interface KubeList {
  readonly metadata: { readonly resourceVersion?: string };
  readonly items: KubeObject[];
}

export interface ListOptions {
  /** Sent on every page, e.g. `type!=helm.sh/release.v1`; the watch must be given the same. */
  readonly fieldSelector?: string | undefined;
  readonly labelSelector?: string | undefined;
  /** Objects per page (default 500). */
  readonly pageSize?: number | undefined;
  /** Hears of a list begun again after its continue token expired. */
  readonly logger?: Logger | undefined;
}

/**
 * GET a collection as JSON, page after page, the objects untouched (the generated typed clients would
 * turn them into model classes with Dates; the watch hands us plain JSON, and both must look the
 * same). The result's resourceVersion is the last page's: where a watch takes up.
 */
export async function listCollection(kc: KubeConfig, path: string, signal: AbortSignal, opts: ListOptions = {}): Promise<KubeList> {
  const connection = new SharedConnection();
  try {
    for (let restarts = 0; ; restarts++) {
      try {
        return await listPages(kc, path, signal, opts, connection);
      } catch (err) {
        if (!(err instanceof ContinueExpired) || restarts >= EXPIRED_RESTARTS) throw err;
        opts.logger?.info({ path, pagesRead: err.pagesRead }, 'Kubernetes API list expired between two pages; listing again from the first');
      }
    }
  } finally {
    await connection.close();
  }
}

/** A page refused because the snapshot its continue token names is gone. */
class ContinueExpired extends KubeApiError {
  constructor(
    path: string,
    detail: string,
    readonly pagesRead: number,
  ) {
    super(410, path, `the list expired after ${pagesRead} page${pagesRead === 1 ? '' : 's'} (${detail})`);
  }
}

async function listPages(kc: KubeConfig, path: string, signal: AbortSignal, opts: ListOptions, connection: SharedConnection): Promise<KubeList> {
  const items: KubeObject[] = [];
  let resourceVersion: string | undefined;
  let token: string | undefined;
  let pages = 0;
  do {
    const query = new URLSearchParams();
    if (opts.fieldSelector) query.set('fieldSelector', opts.fieldSelector);
    if (opts.labelSelector) query.set('labelSelector', opts.labelSelector);
    query.set('limit', String(opts.pageSize ?? LIST_PAGE_SIZE));
    if (token) query.set('continue', token);
    const res = await kubeRequest(kc, 'GET', `${path}?${query}`, { signal, connection });
    if (res.status === 410 && token) throw new ContinueExpired(path, statusMessage(res.text), pages);
    if (res.status !== 200) throw new KubeApiError(res.status, path, statusMessage(res.text), 'GET');
    // One page's text at a time: parsed, its objects kept, the text dropped before the next is asked for.
    const page: unknown = JSON.parse(res.text);
    if (!isRecord(page) || !Array.isArray(page.items)) throw new Error(`GET ${path}: the answer is not a list`);
    for (const item of page.items as KubeObject[]) items.push(item);
    const meta = isRecord(page.metadata) ? page.metadata : {};
    if (typeof meta.resourceVersion === 'string') resourceVersion = meta.resourceVersion;
    const next = typeof meta.continue === 'string' && meta.continue !== '' ? meta.continue : undefined;
    // A server that hands back the token it was given would keep this asking for ever.
    if (next !== undefined && next === token) throw new Error(`GET ${path}: the server sent the same continue token again`);
    token = next;
    pages++;
    // undici puts the connection back in its pool a turn of the event loop after the body is read;
    // asking for the next page before that would open a second connection (and TLS handshake).
    if (token) await new Promise((resolve) => setImmediate(resolve));
  } while (token);
  return { metadata: resourceVersion === undefined ? {} : { resourceVersion }, items };
}
