// A stand-in for the Kubernetes API server, enough for list+watch clients: it holds objects per
// collection (kube-api-kinds.ts), numbers every change with a global resourceVersion, answers lists
// (in pages: kube-api-pages.ts) and streams watch events the way kube-apiserver does (field and label selectors included), and
// sends BOOKMARK events to watches that ask, ends each watch after its timeoutSeconds, and
// can be told to fail (404 for an absent CRD, 403, 500 on reads or writes, 410 Gone, dropped
// connections) so tests can watch a client cope. Writes, single-object reads and TokenReview are kube-api-writes.ts's.

import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { randomUUID } from 'node:crypto';
import { parseAllDocuments } from 'yaml';
import { KubeConfig } from '@kubernetes/client-node';
import { COLLECTIONS, fieldSelectorOf, keyOf, labelSelectorOf, route, withType, type Collection, type Obj } from './kube-api-kinds.js';
import { answerStatus as status, putStatus, writeOne, type WriteContext } from './kube-api-writes.js';
import { listPaging, type ListPaging } from './kube-api-pages.js';

type EventType = 'ADDED' | 'MODIFIED' | 'DELETED';

interface Watcher {
  readonly collection: Collection;
  readonly namespace: string | undefined;
  readonly selector: (o: Obj) => boolean;
  readonly res: ServerResponse;
  /** The client asked for BOOKMARK events (`allowWatchBookmarks=true`). */
  readonly bookmarks: boolean;
  held: boolean;
}

export interface SeenRequest {
  readonly method: string;
  readonly path: string;
  readonly query: Record<string, string>;
  readonly authorization: string | undefined;
  /** The JSON body of a POST or PUT. */
  body?: unknown;
  /** The status answered (a watch refused with an `ERROR` event counts as 410). */
  status: number;
}

export interface KubeApiStandIn {
  readonly url: string;
  readonly token: string;
  /** Every request received, in order. */
  readonly requests: SeenRequest[];
  /** Connections accepted so far (TCP; with `tls`, each one a handshake). */
  readonly connections: number;
  /** How a watch from a compacted resourceVersion is refused: an `ERROR` event (what kube-apiserver does) or HTTP 410. */
  goneAs: 'event' | 'status';
  kubeconfig(): KubeConfig;
  /** The same, as kubeconfig YAML (for a `--kubeconfig FILE`). */
  kubeconfigYaml(): string;
  /** A kubeconfig with a token of its own, accepted like the main one: a client the test can cut off alone. */
  clientKubeconfig(): { kubeconfig: KubeConfig; token: string; yaml: string };
  /** Answer 401 to every request made with `token` from now on (cut off), only those on `plural` when given; or accept it again. */
  refuseToken(token: string, refused: boolean, plural?: string): void;
  /** Create or replace an object (as `kubectl apply` would end up); returns its new resourceVersion. */
  apply(obj: Record<string, unknown>): string;
  /** The stored object (with its status), or undefined; `namespace` is ignored for cluster-scoped kinds. */
  get(apiVersion: string, kind: string, namespace: string, name: string): Record<string, any> | undefined;
  /** Status writes received (`PUT …/status`), in order: `plural namespace/name`. */
  readonly statusWrites: string[];
  /** Every document of a YAML text. */
  applyYaml(text: string): void;
  delete(kind: string, namespace: string, name: string): void;
  /** Every stored object of a kind. */
  all(kind: string): Array<Record<string, any>>;
  /** TokenReview accepts `token` (for `audiences`, default ['istio-ca']) as that service account. */
  addServiceAccountToken(token: string, namespace: string, serviceAccount: string, audiences?: readonly string[]): void;
  /** TokenReview answers this status instead (500, 403 …) until set back to undefined. */
  tokenReviewFailure: number | undefined;
  /** Serve 404 for a collection (its CRD is not installed), or serve it again. */
  setAbsent(plural: string, absent: boolean): void;
  setForbidden(plural: string, forbidden: boolean): void;
  /** The next `times` requests on the collection answer `status`: lists, watches, either (`any`), or writes (create, replace, delete). */
  failNext(plural: string, opts?: { status?: number; on?: 'list' | 'watch' | 'any' | 'write'; times?: number }): void;
  /** Forget the event history: watches from any earlier resourceVersion, and lists continued from one, are now too old. */
  compact(): void;
  /** Lists in pages (`limit`, `continue`): how small they are, expired continue tokens, a hook between pages. */
  readonly paging: ListPaging;
  /** Open watches stop receiving events (a stalled connection); later watches are not affected. */
  holdWatches(): void;
  /**
   * Send each open watch an `ERROR` event, then end it: code 410 (the history it watches from is
   * gone) by default, or another (500: the storage timed out, say) that does not ask for a re-list.
   */
  expireWatches(code?: number): void;
  /** End each open watch normally (the server's watch timeout). */
  closeWatches(): void;
  /**
   * Send a `BOOKMARK` event at the current resourceVersion to each open watch that asked for them
   * (kube-apiserver sends one about once a minute); returns how many were sent.
   */
  bookmark(): number;
  /** Destroy each open watch's connection mid-stream. */
  dropWatches(): void;
  openWatches(plural?: string): number;
  /**
   * Resolves once `check` holds, looked at again after every stored change, every answered
   * request and every watch opened or closed (no polling); rejects after `ms` saying `what` was not reached.
   */
  until(check: () => boolean, what: string, ms?: number): Promise<void>;
  close(): Promise<void>;
}

/** `tls`: serve HTTPS with this certificate (for 127.0.0.1), trusted through the kubeconfig's CA data. */
export async function startKubeApi(opts: { token?: string; maxPageSize?: number; tls?: { certPem: string; keyPem: string; caPem: string } } = {}): Promise<KubeApiStandIn> {
  const token = opts.token ?? `test-token-${randomUUID()}`;
  const store = new Map<Collection, Map<string, Obj>>(COLLECTIONS.map((c) => [c, new Map()]));
  const history: Array<{ rv: number; collection: Collection; type: EventType; object: Obj }> = [];
  const watchers = new Set<Watcher>();
  const sockets = new Set<Socket>();
  const absent = new Set<string>();
  const forbidden = new Set<string>();
  /** Tokens cut off: from every collection (undefined), or from one. */
  const refused = new Map<string, string | undefined>();
  const failures = new Map<string, { status: number; on: 'list' | 'watch' | 'any' | 'write'; times: number }>();
  const requests: SeenRequest[] = [];
  const reviewTokens = new Map<string, { namespace: string; serviceAccount: string; audiences: readonly string[] }>();
  const reviewState = { failure: undefined as number | undefined };
  let rv = 1000;
  let compactedRv = 0;
  const paging = listPaging({ rv: () => rv, compactedRv: () => compactedRv, objects: (c) => store.get(c)!.values(), asListed: (c, o) => (c.builtIn ? o : withType(c, o)) });
  if (opts.maxPageSize !== undefined) paging.maxPageSize = opts.maxPageSize;

  const collectionOf = (apiVersion: unknown, kind: unknown): Collection => {
    const c = COLLECTIONS.find((x) => x.apiVersion === apiVersion && x.kind === kind);
    if (!c) throw new Error(`the stand-in does not serve ${String(apiVersion)} ${String(kind)}`);
    return c;
  };
  const inNamespace = (o: Obj, ns: string | undefined) => ns === undefined || o.metadata.namespace === ns;

  const statusWrites: string[] = [];
  const waiters = new Set<() => void>();
  /** After the change in hand is complete: each waiter looks at the stand-in again. */
  const wake = (): void => queueMicrotask(() => {
    for (const w of [...waiters]) w();
  });

  const publish = (collection: Collection, type: EventType, object: Obj): void => {
    history.push({ rv, collection, type, object });
    wake();
    const line = JSON.stringify({ type, object: withType(collection, object) }) + '\n';
    for (const w of watchers) if (!w.held && w.collection === collection && inNamespace(object, w.namespace) && w.selector(object)) w.res.write(line);
  };

  /** Stores `obj` (new or replacing), publishing the event; returns the stored object. */
  const store1 = (collection: Collection, namespace: string | undefined, input: Record<string, unknown>): Obj => {
    const meta = (input.metadata ?? {}) as Record<string, unknown>;
    const name = String(meta.name);
    const ns = collection.clusterScoped ? '' : (namespace ?? (typeof meta.namespace === 'string' ? meta.namespace : 'default'));
    const objects = store.get(collection)!;
    const key = keyOf(collection, ns, name);
    const old = objects.get(key);
    rv++;
    const { apiVersion: _a, kind: _k, ...rest } = structuredClone(input);
    // metadata.generation counts spec changes, as the API server counts them for objects with a status subresource.
    const oldGeneration = typeof old?.metadata.generation === 'number' ? old.metadata.generation : 0;
    const generation = old && JSON.stringify(old.spec) === JSON.stringify(rest.spec) ? oldGeneration : oldGeneration + 1;
    const obj = {
      ...rest,
      ...(old?.status !== undefined && rest.status === undefined ? { status: old.status } : {}),
      metadata: {
        ...meta,
        name,
        ...(collection.clusterScoped ? {} : { namespace: ns }),
        generation,
        uid: old?.metadata.uid ?? randomUUID(),
        resourceVersion: String(rv),
        creationTimestamp: old?.metadata.creationTimestamp ?? meta.creationTimestamp ?? new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
      },
    } as unknown as Obj;
    objects.set(key, obj);
    publish(collection, old ? 'MODIFIED' : 'ADDED', obj);
    return obj;
  };

  const writes: WriteContext = {
    store,
    statusWrites,
    forbidden,
    reviewTokens,
    reviewState,
    store1,
    replaceStatus(collection, key, newStatus) {
      const old = store.get(collection)!.get(key)!;
      rv++;
      const obj = { ...old, status: newStatus, metadata: { ...old.metadata, resourceVersion: String(rv) } } as Obj;
      store.get(collection)!.set(key, obj);
      publish(collection, 'MODIFIED', obj);
      return obj;
    },
    remove: (kind, namespace, name) => api.delete(kind, namespace, name),
    failWrite(plural) {
      const failure = failures.get(plural);
      if (failure?.on !== 'write') return undefined;
      if (--failure.times <= 0) failures.delete(plural);
      return failure.status;
    },
  };

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const url = new URL(req.url ?? '/', 'http://stand-in');
    const query = Object.fromEntries(url.searchParams);
    const seen: SeenRequest = { method: req.method ?? '', path: url.pathname, query, authorization: req.headers.authorization, status: 0 };
    requests.push(seen);
    res.on('finish', () => {
      seen.status ||= res.statusCode;
      wake();
    });
    const bearer = req.headers.authorization?.replace(/^Bearer /, '');
    const cut = bearer !== undefined && refused.has(bearer) && [undefined, route(url.pathname)?.collection.plural].includes(refused.get(bearer));
    if (bearer === undefined || cut || (bearer !== token && !clientTokens.has(bearer))) return status(res, 401, 'Unauthorized', 'Unauthorized');
    if (req.method === 'PUT' && url.pathname.endsWith('/status')) {
      putStatus(writes, req, res, url.pathname).catch((err: Error) => status(res, 500, 'InternalError', err.message));
      return;
    }
    const target = route(url.pathname);
    if (req.method !== 'GET' || target?.name !== undefined || url.pathname.startsWith('/apis/authentication.k8s.io/')) {
      writeOne(writes, req, res, url, seen).catch((err: Error) => status(res, 500, 'InternalError', err.message));
      return;
    }
    if (!target || absent.has(target.collection.plural)) return status(res, 404, 'NotFound', 'the server could not find the requested resource');
    const { collection, namespace } = target;
    const watch = query.watch === 'true' || query.watch === '1';
    const fields = fieldSelectorOf(query.fieldSelector);
    const labels = labelSelectorOf(query.labelSelector);
    const selector = (o: Obj): boolean => fields(o) && labels(o);
    if (forbidden.has(collection.plural)) {
      const verb = watch ? 'watch' : 'list';
      const group = collection.apiVersion.includes('/') ? collection.apiVersion.split('/')[0] : '';
      return status(res, 403, 'Forbidden', `${collection.plural}${group ? `.${group}` : ''} is forbidden: User "system:serviceaccount:test:test" cannot ${verb} resource "${collection.plural}" in API group "${group}" at the cluster scope`);
    }
    const failure = failures.get(collection.plural);
    if (failure && failure.on !== 'write' && (failure.on === 'any' || (failure.on === 'watch') === watch)) {
      if (--failure.times <= 0) failures.delete(collection.plural);
      return status(res, failure.status, 'InternalError', 'an error on the server ("injected by the test") has prevented the request from succeeding');
    }
    if (!watch) return paging.answer({ collection, namespace, query, selector }, res);
    const from = query.resourceVersion;
    const fromRv = from === undefined || from === '' || from === '0' ? undefined : Number(from);
    if (fromRv !== undefined && (!Number.isFinite(fromRv) || fromRv < compactedRv)) {
      const message = `too old resource version: ${from} (${compactedRv})`;
      if (goneState.goneAs === 'status') return status(res, 410, 'Expired', message);
      seen.status = 410;
      res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' });
      res.end(JSON.stringify({ type: 'ERROR', object: { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason: 'Expired', code: 410 } }) + '\n');
      return;
    }
    res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' });
    res.flushHeaders();
    seen.status = 200;
    const w: Watcher = { collection, namespace, selector, res, bookmarks: query.allowWatchBookmarks === 'true', held: false };
    watchers.add(w);
    // timeoutSeconds: the server ends the watch normally when it is up, as kube-apiserver does.
    const lifetime = Number(query.timeoutSeconds);
    const expiry = Number.isFinite(lifetime) && lifetime > 0 ? setTimeout(() => (watchers.delete(w), res.end()), lifetime * 1000) : undefined;
    res.on('close', () => (watchers.delete(w), clearTimeout(expiry), wake()));
    wake();
    if (fromRv === undefined) {
      // No version: the current state as synthetic ADDED events, then what follows.
      for (const o of store.get(collection)!.values()) if (inNamespace(o, namespace) && selector(o)) res.write(JSON.stringify({ type: 'ADDED', object: withType(collection, o) }) + '\n');
    } else {
      for (const e of history) {
        if (e.rv > fromRv && e.collection === collection && inNamespace(e.object, namespace) && selector(e.object)) res.write(JSON.stringify({ type: e.type, object: withType(collection, e.object) }) + '\n');
      }
    }
  };

  const server = opts.tls ? createHttpsServer({ cert: opts.tls.certPem, key: opts.tls.keyPem }, handle) : createServer(handle);
  let connections = 0;
  server.on('connection', (s: Socket) => {
    connections++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `${opts.tls ? 'https' : 'http'}://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const trust = opts.tls ? `certificate-authority-data: "${Buffer.from(opts.tls.caPem).toString('base64')}"` : 'insecure-skip-tls-verify: true';
  const goneState = { goneAs: 'event' as 'event' | 'status' };

  const clientTokens = new Set<string>();
  const kubeconfigYaml = (as = token): string => `apiVersion: v1
kind: Config
clusters:
- name: stand-in
  cluster: {server: "${url}", ${trust}}
users:
- name: tester
  user: {token: "${as}"}
contexts:
- name: stand-in
  context: {cluster: stand-in, user: tester}
current-context: stand-in
`;

  const api: KubeApiStandIn = {
    url,
    token,
    requests,
    paging,
    get connections() {
      return connections;
    },
    get goneAs() {
      return goneState.goneAs;
    },
    set goneAs(v) {
      goneState.goneAs = v;
    },
    kubeconfig() {
      const kc = new KubeConfig();
      kc.loadFromString(kubeconfigYaml());
      return kc;
    },
    kubeconfigYaml: () => kubeconfigYaml(),
    clientKubeconfig() {
      const t = `test-client-${randomUUID()}`;
      clientTokens.add(t);
      const kc = new KubeConfig();
      kc.loadFromString(kubeconfigYaml(t));
      return { kubeconfig: kc, token: t, yaml: kubeconfigYaml(t) };
    },
    refuseToken(t, yes, plural) {
      if (yes) refused.set(t, plural);
      else refused.delete(t);
    },
    statusWrites,
    until(check, what, ms = 20_000) {
      return new Promise<void>((resolve, reject) => {
        const look = (): void => {
          if (!check()) return;
          waiters.delete(look);
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(() => {
          waiters.delete(look);
          reject(new Error(`not reached in ${ms} ms: ${what}`));
        }, ms);
        waiters.add(look);
        look();
      });
    },
    get(apiVersion, kind, namespace, name) {
      const collection = collectionOf(apiVersion, kind);
      const o = store.get(collection)!.get(`${collection.clusterScoped ? '' : namespace}/${name}`);
      return o ? structuredClone(withType(collection, o)) : undefined;
    },
    apply(input) {
      const collection = collectionOf(input.apiVersion, input.kind);
      const meta = (input.metadata ?? {}) as Record<string, unknown>;
      if (typeof meta.name !== 'string') throw new Error('apply: metadata.name is required');
      const namespace = collection.clusterScoped ? '' : typeof meta.namespace === 'string' ? meta.namespace : 'default';
      return String(store1(collection, namespace, input).metadata.resourceVersion);
    },
    applyYaml(text) {
      for (const doc of parseAllDocuments(text)) {
        const value = doc.toJS() as Record<string, unknown> | null;
        if (value) api.apply(value);
      }
    },
    delete(kind, namespace, name) {
      const collection = COLLECTIONS.find((c) => c.kind === kind);
      if (!collection) throw new Error(`delete: unknown kind ${kind}`);
      const objects = store.get(collection)!;
      const key = keyOf(collection, namespace, name);
      const old = objects.get(key);
      if (!old) throw new Error(`delete: ${kind} ${namespace}/${name} does not exist`);
      objects.delete(key);
      rv++;
      publish(collection, 'DELETED', { ...old, metadata: { ...old.metadata, resourceVersion: String(rv) } });
    },
    all(kind) {
      const collection = COLLECTIONS.find((c) => c.kind === kind);
      if (!collection) throw new Error(`all: unknown kind ${kind}`);
      return [...store.get(collection)!.values()].map((o) => structuredClone(withType(collection, o)));
    },
    addServiceAccountToken(t, namespace, serviceAccount, audiences = ['istio-ca']) {
      reviewTokens.set(t, { namespace, serviceAccount, audiences });
    },
    get tokenReviewFailure() {
      return reviewState.failure;
    },
    set tokenReviewFailure(v) {
      reviewState.failure = v;
    },
    setAbsent(plural, yes) {
      if (yes) absent.add(plural);
      else absent.delete(plural);
    },
    setForbidden(plural, yes) {
      if (yes) forbidden.add(plural);
      else forbidden.delete(plural);
    },
    failNext(plural, o = {}) {
      failures.set(plural, { status: o.status ?? 500, on: o.on ?? 'any', times: o.times ?? 1 });
    },
    compact() {
      // A watch from `rv` itself needs no history; from anything older it does, and that is gone.
      compactedRv = rv;
      history.length = 0;
      paging.compacted();
    },
    holdWatches() {
      for (const w of watchers) w.held = true;
    },
    expireWatches(code = 410) {
      const [message, reason] = code === 410 ? ['too old resource version', 'Expired'] : ['etcdserver: request timed out', 'InternalError'];
      const line = JSON.stringify({ type: 'ERROR', object: { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code } }) + '\n';
      for (const w of [...watchers]) {
        watchers.delete(w);
        w.res.end(line);
      }
    },
    bookmark() {
      let sent = 0;
      for (const w of watchers) {
        if (!w.bookmarks || w.held) continue;
        w.res.write(JSON.stringify({ type: 'BOOKMARK', object: { kind: w.collection.kind, apiVersion: w.collection.apiVersion, metadata: { resourceVersion: String(rv) } } }) + '\n');
        sent++;
      }
      return sent;
    },
    closeWatches() {
      for (const w of [...watchers]) {
        watchers.delete(w);
        w.res.end();
      }
    },
    dropWatches() {
      for (const w of [...watchers]) {
        watchers.delete(w);
        w.res.socket?.destroy();
      }
    },
    openWatches(plural) {
      return [...watchers].filter((w) => plural === undefined || w.collection.plural === plural).length;
    },
    async close() {
      for (const w of watchers) w.res.end();
      watchers.clear();
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  return api;
}
