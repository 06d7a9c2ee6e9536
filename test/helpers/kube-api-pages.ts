// How the Kubernetes API stand-in (kube-api.ts) answers a list, paged as kube-apiserver pages it:
// without `limit`, everything at once; with `limit`, at most that many objects, in key order
// (namespace/name, byte-wise, as etcd orders its keys), and while more remain a `metadata.continue`
// token (opaque to clients: base64 of the snapshot's resourceVersion and the last key sent) plus
// `metadata.remainingItemCount` when no selector was given (with one, the server cannot know it).
// Every page of one list is read from the snapshot the first page saw, and carries its
// resourceVersion. A token whose snapshot was compacted away is refused with 410 Gone, reason
// `Expired`, and a token to go on inconsistently, as kube-apiserver words it. The stand-in also pages
// below the client's `limit` (at most `maxPageSize` objects; the API allows a server to send fewer
// than asked), so that every list in the suite, however small, goes over several pages.

import type { ServerResponse } from 'node:http';
import type { Collection, Obj } from './kube-api-kinds.js';
import { answerStatus } from './kube-api-writes.js';

/** What a test can do to paged lists. */
export interface ListPaging {
  /** At most this many objects per page, whatever `limit` asks (default 3; Infinity: exactly the `limit`). */
  maxPageSize: number;
  /** The next `times` pages asked for with a continue token are refused with 410 Expired (the snapshot compacted). */
  expireContinues(times?: number): void;
  /** Called after each page of a paged list is sent (`page` counts from 1), e.g. to change objects mid-list. */
  onPage: ((page: { plural: string; page: number; resourceVersion: string; more: boolean }) => void) | undefined;
}

export interface ListRequest {
  readonly collection: Collection;
  readonly namespace: string | undefined;
  readonly query: Record<string, string>;
  readonly selector: (o: Obj) => boolean;
}

/** The state lists are read from. */
export interface ListState {
  readonly rv: () => number;
  readonly compactedRv: () => number;
  /** The collection's objects now. */
  readonly objects: (c: Collection) => Iterable<Obj>;
  /** The object as a list sends it (built-in kinds go without apiVersion and kind). */
  readonly asListed: (c: Collection, o: Obj) => Obj;
}

const keyOf = (o: Obj): string => `${o.metadata.namespace ?? ''}/${o.metadata.name}`;
const byKey = (a: Obj, b: Obj): number => (keyOf(a) < keyOf(b) ? -1 : keyOf(a) > keyOf(b) ? 1 : 0);

export function listPaging(state: ListState): ListPaging & { answer(req: ListRequest, res: ServerResponse): void; compacted(): void } {
  /** Each collection as it was at the resourceVersions continue tokens name (by collection: Istio's and the Gateway API's `gateways` share a plural). */
  const snapshots = new Map<Collection, Map<number, Obj[]>>();
  const snapshotNow = (c: Collection): Obj[] => snapshots.get(c)?.get(state.rv()) ?? [...state.objects(c)].sort(byKey);
  /** Kept while a continue token may name it (until compaction), only for lists of more than one page. */
  const keep = (c: Collection, rv: number, objects: Obj[]): void => {
    const byRv = snapshots.get(c) ?? new Map<number, Obj[]>();
    snapshots.set(c, byRv);
    byRv.set(rv, objects);
  };
  const tokenOf = (rv: number, start: string): string => Buffer.from(JSON.stringify({ rv, start })).toString('base64url');
  let expiring = 0;
  const pagesSent = new Map<string, number>();

  const paging = {
    maxPageSize: 3,
    onPage: undefined as ListPaging['onPage'],
    expireContinues(times = 1) {
      expiring += times;
    },
    /** History before the compacted version is gone: so are the snapshots continue tokens name. */
    compacted() {
      for (const byRv of snapshots.values()) for (const rv of byRv.keys()) if (rv < state.compactedRv()) byRv.delete(rv);
    },
    answer(req: ListRequest, res: ServerResponse): void {
      const { collection, namespace, query, selector } = req;
      const matches = (o: Obj): boolean => (namespace === undefined || o.metadata.namespace === namespace) && selector(o);
      const limit = Number(query.limit ?? 0);
      if (!(limit > 0)) {
        const items = [...state.objects(collection)].filter(matches).sort(byKey).map((o) => state.asListed(collection, o));
        return send(res, collection, { resourceVersion: String(state.rv()) }, items);
      }
      let rv = state.rv();
      let start = '';
      let objects: Obj[];
      if (query.continue) {
        if (query.resourceVersion) return answerStatus(res, 400, 'BadRequest', 'a continued list takes no resourceVersion: the token names it');
        let token: { rv?: unknown; start?: unknown };
        try {
          token = JSON.parse(Buffer.from(query.continue, 'base64url').toString('utf8')) as typeof token;
        } catch {
          token = {};
        }
        if (typeof token.rv !== 'number' || typeof token.start !== 'string') return answerStatus(res, 400, 'BadRequest', 'the continue token cannot be read');
        rv = token.rv;
        start = token.start;
        const snapshot = snapshots.get(collection)?.get(rv);
        if (expiring > 0 || !snapshot || rv < state.compactedRv()) {
          expiring = Math.max(0, expiring - 1);
          // As kube-apiserver answers: reason Expired, and a token that goes on from the current state.
          keep(collection, state.rv(), snapshotNow(collection));
          const body = JSON.stringify({
            kind: 'Status',
            apiVersion: 'v1',
            metadata: { continue: tokenOf(state.rv(), start) },
            status: 'Failure',
            message: `the continue token's resourceVersion ${rv} has been compacted: list again without it, or go on with the token in this answer (what changed since may be inconsistent)`,
            reason: 'Expired',
            code: 410,
          });
          res.writeHead(410, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
          res.end(body);
          return;
        }
        objects = snapshot;
      } else {
        objects = snapshotNow(collection);
      }
      // The page, and whether anything after it matches: a page's cost is its size, as an etcd range read's is.
      const size = Math.min(limit, paging.maxPageSize);
      const page: Obj[] = [];
      let at = firstAfter(objects, start);
      for (; at < objects.length && page.length < size; at++) if (matches(objects[at]!)) page.push(objects[at]!);
      let more = false;
      for (let next = at; next < objects.length && !more; next++) more = matches(objects[next]!);
      const filtered = Boolean(query.labelSelector || query.fieldSelector);
      const remaining = (): number => (namespace === undefined ? objects.length - at : objects.slice(at).filter(matches).length);
      if (more && !query.continue) keep(collection, rv, objects);
      const metadata = {
        resourceVersion: String(rv),
        ...(more ? { continue: tokenOf(rv, keyOf(page.at(-1)!)) } : {}),
        ...(more && !filtered ? { remainingItemCount: remaining() } : {}),
      };
      send(res, collection, metadata, page.map((o) => state.asListed(collection, o)));
      const listId = `${collection.apiVersion}/${collection.plural}@${rv}?${query.labelSelector ?? ''}&${query.fieldSelector ?? ''}&${namespace ?? ''}`;
      const n = (query.continue ? (pagesSent.get(listId) ?? 0) : 0) + 1;
      if (more) pagesSent.set(listId, n);
      else pagesSent.delete(listId);
      paging.onPage?.({ plural: collection.plural, page: n, resourceVersion: String(rv), more });
    },
  };
  return paging;
}

/** The index of the first object whose key sorts after `start` (the objects are in key order). */
function firstAfter(objects: readonly Obj[], start: string): number {
  let lo = 0;
  let hi = objects.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (keyOf(objects[mid]!) > start) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

function send(res: ServerResponse, collection: Collection, metadata: Record<string, unknown>, items: Obj[]): void {
  const body = JSON.stringify({ kind: `${collection.kind}List`, apiVersion: collection.apiVersion, metadata, items });
  res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}
