// What the Kubernetes API stand-in (kube-api.ts) answers to clients that write, or read one object:
// single-object GET, create (POST, 409 AlreadyExists when it exists), replace (PUT, 404 when it does not, 409 on
// a stale resourceVersion), JSON-patch PATCH (422 when a `test` fails) and DELETE, each failing when a test says so; the status subresource
// (PUT …/status), and TokenReview from the tokens a test registers. Answers are shaped as
// kube-apiserver's (a `Status` object for every failure).

import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import { COLLECTIONS, keyOf, route, withType, type Collection, type Obj } from './kube-api-kinds.js';

/** The stand-in's state and operations that writes use. */
export interface WriteContext {
  readonly store: Map<Collection, Map<string, Obj>>;
  /** `plural namespace/name` of each status write, in order. */
  readonly statusWrites: string[];
  readonly forbidden: ReadonlySet<string>;
  readonly reviewTokens: ReadonlyMap<string, { namespace: string; serviceAccount: string; audiences: readonly string[] }>;
  readonly reviewState: { readonly failure: number | undefined };
  /** Stores `input` (new or replacing), publishing the event; returns the stored object. */
  store1(collection: Collection, namespace: string | undefined, input: Record<string, unknown>): Obj;
  /** Replaces the status of the stored object at `key`, publishing the event; returns it. */
  replaceStatus(collection: Collection, key: string, status: unknown): Obj;
  remove(kind: string, namespace: string, name: string): void;
  /** The status a write to the collection is to fail with (injected by the test), if any. */
  failWrite(plural: string): number | undefined;
}

/** A failure, as kube-apiserver words it. */
export function answerStatus(res: ServerResponse, code: number, reason: string, message: string): void {
  const body = JSON.stringify({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code });
  res.writeHead(code, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

function json(res: ServerResponse, code: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(code, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

async function readBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const c of req as AsyncIterable<Buffer>) chunks.push(c);
  return JSON.parse(Buffer.concat(chunks).toString('utf8') || 'null');
}

/** `PUT …/<plural>/<name>/status`: replace the status only, if the resourceVersion sent is current. */
export async function putStatus(ctx: WriteContext, req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
  const m = /^\/apis?\/(v1|[^/]+\/[^/]+)(?:\/namespaces\/([^/]+))?\/([^/]+)\/([^/]+)\/status$/.exec(path);
  const collection = m && COLLECTIONS.find((c) => c.apiVersion === m[1] && c.plural === m[3]);
  if (!m || !collection) return answerStatus(res, 404, 'NotFound', 'the server could not find the requested resource');
  const key = `${collection.clusterScoped ? '' : decodeURIComponent(m[2] ?? '')}/${decodeURIComponent(m[4]!)}`;
  let body: Obj;
  try {
    body = (await readBody(req)) as Obj;
  } catch {
    return answerStatus(res, 400, 'BadRequest', 'the body is not JSON');
  }
  const old = ctx.store.get(collection)!.get(key);
  if (!old) return answerStatus(res, 404, 'NotFound', `${collection.plural} "${m[4]}" not found`);
  if (body?.metadata?.resourceVersion !== old.metadata.resourceVersion) {
    return answerStatus(res, 409, 'Conflict', `Operation cannot be fulfilled on ${collection.plural} "${m[4]}": the object has been modified; please apply your changes to the latest version and try again`);
  }
  const obj = ctx.replaceStatus(collection, key, body.status);
  ctx.statusWrites.push(`${collection.plural} ${key.startsWith('/') ? key.slice(1) : key}`);
  json(res, 200, withType(collection, obj));
}

/** POST, PUT, DELETE and GET of one object; TokenReview. */
export async function writeOne(ctx: WriteContext, req: IncomingMessage, res: ServerResponse, url: URL, seen: { body?: unknown }): Promise<void> {
  if (req.method === 'POST' && url.pathname === '/apis/authentication.k8s.io/v1/tokenreviews') return tokenReview(ctx, req, res, seen);
  const target = route(url.pathname);
  if (!target) return answerStatus(res, 404, 'NotFound', 'the server could not find the requested resource');
  const { collection, namespace, name } = target;
  if (ctx.forbidden.has(collection.plural)) return answerStatus(res, 403, 'Forbidden', `${collection.plural} is forbidden (set by the test)`);
  const objects = ctx.store.get(collection)!;
  const failure = req.method === 'GET' ? undefined : ctx.failWrite(collection.plural);
  if (failure !== undefined) return answerStatus(res, failure, 'InternalError', 'an error on the server ("injected by the test") has prevented the request from succeeding');
  if (req.method === 'GET') {
    const o = objects.get(keyOf(collection, namespace, name!));
    return o ? json(res, 200, withType(collection, o)) : answerStatus(res, 404, 'NotFound', `${collection.plural} "${name}" not found`);
  }
  if (req.method === 'DELETE') {
    const o = objects.get(keyOf(collection, namespace, name!));
    if (!o) return answerStatus(res, 404, 'NotFound', `${collection.plural} "${name}" not found`);
    ctx.remove(collection.kind, o.metadata.namespace ?? '', o.metadata.name);
    return json(res, 200, { kind: 'Status', apiVersion: 'v1', status: 'Success' });
  }
  if (req.method === 'PATCH' && name !== undefined) return jsonPatch(ctx, req, res, collection, keyOf(collection, namespace, name), seen);
  const body = (await readBody(req)) as Record<string, any>;
  seen.body = body;
  const bodyName = body?.metadata?.name;
  if (typeof bodyName !== 'string') return answerStatus(res, 422, 'Invalid', 'metadata.name: Required value');
  if (body.metadata.namespace !== undefined && body.metadata.namespace !== namespace) return answerStatus(res, 400, 'BadRequest', 'the namespace of the object does not match the namespace on the request');
  const existing = objects.get(keyOf(collection, namespace, bodyName));
  const invalid = collection.kind === 'Lease' ? invalidLease(body.spec) : undefined;
  if (invalid) return answerStatus(res, invalid.code, invalid.code === 400 ? 'BadRequest' : 'Invalid', invalid.message);
  if (req.method === 'POST' && name === undefined) {
    if (existing) return answerStatus(res, 409, 'AlreadyExists', `${collection.plural} "${bodyName}" already exists`);
    return json(res, 201, withType(collection, ctx.store1(collection, namespace, { ...body, metadata: { ...body.metadata, resourceVersion: undefined } })));
  }
  if (req.method === 'PUT' && name !== undefined) {
    if (name !== bodyName) return answerStatus(res, 400, 'BadRequest', 'the name of the object does not match the name on the URL');
    if (!existing) return answerStatus(res, 404, 'NotFound', `${collection.plural} "${name}" not found`);
    const asked = body.metadata.resourceVersion;
    if (asked !== undefined && asked !== existing.metadata.resourceVersion) {
      return answerStatus(res, 409, 'Conflict', `Operation cannot be fulfilled on ${collection.plural} "${name}": the object has been modified; please apply your changes to the latest version and try again`);
    }
    if (collection.kind === 'Secret' && body.type !== undefined && existing.type !== undefined && body.type !== existing.type) return answerStatus(res, 422, 'Invalid', 'type: Invalid value: field is immutable');
    return json(res, 200, withType(collection, ctx.store1(collection, namespace, body)));
  }
  return answerStatus(res, 405, 'MethodNotAllowed', `${req.method} is not served on ${url.pathname}`);
}

/**
 * What kube-apiserver refuses in a Lease's spec: MicroTimes not in RFC 3339 with six fractional
 * digits (its JSON decoding fails), a leaseDurationSeconds that is no whole number above zero.
 */
function invalidLease(spec: unknown): { code: 400 | 422; message: string } | undefined {
  if (spec === undefined) return undefined;
  const s = spec as Record<string, unknown>;
  for (const f of ['acquireTime', 'renewTime']) {
    if (s[f] !== undefined && (typeof s[f] !== 'string' || !/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}(Z|[+-]\d\d:\d\d)$/.test(s[f] as string))) {
      return { code: 400, message: `Lease in version "v1" cannot be handled as a Lease: parsing time ${JSON.stringify(s[f])} as "2006-01-02T15:04:05.000000Z07:00": cannot parse` };
    }
  }
  const d = s.leaseDurationSeconds;
  if (d !== undefined && !(Number.isInteger(d) && (d as number) > 0)) return { code: 422, message: `Lease.coordination.k8s.io is invalid: spec.leaseDurationSeconds: Invalid value: ${JSON.stringify(d)}: must be greater than 0` };
  return undefined;
}

async function tokenReview(ctx: WriteContext, req: IncomingMessage, res: ServerResponse, seen: { body?: unknown }): Promise<void> {
  const body = (await readBody(req)) as { spec?: { token?: string; audiences?: string[] } } | null;
  seen.body = body;
  if (ctx.reviewState.failure !== undefined) return answerStatus(res, ctx.reviewState.failure, 'InternalError', 'token review failed (injected by the test)');
  const token = body?.spec?.token ?? '';
  const wanted = body?.spec?.audiences ?? [];
  const known = ctx.reviewTokens.get(token);
  // Like kube-apiserver: authenticated only if the token is valid for one of the asked audiences.
  const audiences = known ? (wanted.length === 0 ? [...known.audiences] : wanted.filter((a) => known.audiences.includes(a))) : [];
  const ok = known !== undefined && audiences.length > 0;
  json(res, 201, {
    apiVersion: 'authentication.k8s.io/v1',
    kind: 'TokenReview',
    metadata: { creationTimestamp: null },
    spec: body?.spec ?? {},
    status: ok
      ? { authenticated: true, audiences, user: { username: `system:serviceaccount:${known.namespace}:${known.serviceAccount}`, uid: randomUUID(), groups: ['system:serviceaccounts', `system:serviceaccounts:${known.namespace}`, 'system:authenticated'] } }
      : { user: {}, error: '[invalid bearer token, token lookup failed]' },
  });
}

/** `PATCH` with `application/json-patch+json`: add, replace, remove and test, on the stored object. */
async function jsonPatch(ctx: WriteContext, req: IncomingMessage, res: ServerResponse, collection: Collection, key: string, seen: { body?: unknown }): Promise<void> {
  if (req.headers['content-type'] !== 'application/json-patch+json') return answerStatus(res, 415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/json-patch+json`);
  const ops = (await readBody(req)) as Array<{ op: string; path: string; value?: unknown }>;
  seen.body = ops;
  const existing = ctx.store.get(collection)!.get(key);
  if (!existing) return answerStatus(res, 404, 'NotFound', `${collection.plural} "${key.split('/')[1]}" not found`);
  const obj = structuredClone(existing) as Record<string, any>;
  for (const { op, path, value } of ops) {
    const keys = path.split('/').slice(1).map((k) => k.replace(/~1/g, '/').replace(/~0/g, '~'));
    const last = keys.pop()!;
    const parent = keys.reduce<any>((v, k) => (v === undefined || v === null ? undefined : v[k]), obj);
    if (parent === undefined || parent === null || typeof parent !== 'object') return answerStatus(res, 422, 'Invalid', `the server rejected our request due to an error in our request: path ${path} does not exist`);
    if (op === 'test' && JSON.stringify(parent[last]) !== JSON.stringify(value)) return answerStatus(res, 422, 'Invalid', `the server rejected our request due to an error in our request: testing value ${path} failed`);
    if (Array.isArray(parent) && op === 'add') parent.splice(last === '-' ? parent.length : Number(last), 0, value);
    else if (Array.isArray(parent) && op === 'remove') parent.splice(Number(last), 1);
    else if (op === 'add' || op === 'replace') parent[last] = value;
    else if (op === 'remove') delete parent[last];
  }
  json(res, 200, withType(collection, ctx.store1(collection, key.split('/')[0] || undefined, obj)));
}
