// External authorization in the authorize stage (docs/tasks/external-authorization.md): a request
// that CUSTOM policies matched is sent to each provider they name, in order, before DENY and ALLOW
// count. Every provider must allow; the first that denies answers the client with its own status,
// body and the headers it may send (flag UAEX); one that cannot be asked answers statusOnError
// (flag UAEX), unless it fails open. A policy naming a provider the mesh config does not define, or
// one that cannot be used, denies as Istio's does: 403 `RBAC: access denied`, the policy named
// `…-deny-due-to-bad-CUSTOM-action` in the access log. When all allow, the headers they chose go
// onto the upstream request (headersToUpstreamOnAllow) and the client's response
// (headersToDownstreamOnAllow). A provider with includeRequestBodyInCheck gets the body, or its
// start, read ahead of forwarding (body-read-ahead.ts) so that the upstream still gets all of it.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ExtAuthzAsk } from '../policy/authorization.js';
import type { ExtAuthzProvider, RequestBodyInCheck } from '../policy/ext-authz-providers.js';
import type { RequestFacts } from '../routing/types.js';
import { checkHttp, type CheckBody, type CheckContext, type CheckOutcome, type CheckPeers, type CheckSubject } from './ext-authz-check.js';
import { checkGrpc } from './ext-authz-grpc.js';
import { extAuthzDenied, extAuthzError, LocalReplies, rbacDenied, type LocalReply } from './respond.js';
import { readBodyStart } from './body-read-ahead.js';
import { requestHasBody } from './relay.js';

export interface ExtAuthzRequest {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly facts: RequestFacts;
  readonly remoteAddress: string;
  readonly providers: ReadonlyMap<string, ExtAuthzProvider | { readonly kind: 'broken'; readonly reason: string }> | undefined;
  readonly ctx: CheckContext;
  /** What a gRPC authorizer is told besides the request itself. */
  readonly peer: CheckPeers;
}

/** Asks every provider of `asks`: undefined when all allowed (their headers applied), else the answer to send. */
export async function askAuthorizers(r: ExtAuthzRequest, asks: readonly ExtAuthzAsk[]): Promise<LocalReply | undefined> {
  const { facts } = r;
  const subject: CheckSubject = {
    method: facts.method,
    path: facts.queryString ? `${facts.path}?${facts.queryString}` : facts.path,
    authority: facts.authority,
    headers: facts.headers,
    sourceIp: r.remoteAddress,
    query: facts.query,
    peer: r.peer,
  };
  const allowed: Array<Extract<CheckOutcome, { kind: 'allow' }>> = [];
  for (const ask of asks) {
    const provider = r.providers?.get(ask.provider);
    if (!provider || provider.kind === 'broken') return rbacDenied(`${ask.policy}-deny-due-to-bad-CUSTOM-action`);
    const withBody = provider.body ? await bodyInCheck(r.req, r.res, provider.body) : NO_BODY;
    if (withBody.refused) return withBody.refused;
    const asked = withBody.body ? { ...subject, body: withBody.body } : subject;
    const outcome = provider.kind === 'http' ? await checkHttp(provider, asked, r.ctx) : await checkGrpc(provider, asked, r.ctx);
    if (outcome.kind === 'deny') return extAuthzDenied(outcome.status, outcome.body, outcome.headers);
    if (outcome.kind === 'error') {
      if (provider.failOpen) continue;
      return extAuthzError(provider.statusOnError, outcome.reason);
    }
    allowed.push(outcome);
  }
  const headers = r.req.headers as Record<string, string | string[] | undefined>;
  for (const a of allowed) {
    for (const name of a.remove ?? []) delete headers[name];
    // The authorizer's headers replace the request's of the same name, or join them when it says append.
    for (const [name, value] of Object.entries(a.upstream)) headers[name] = value;
    for (const [name, value] of Object.entries(a.upstreamAppend ?? {})) headers[name] = joined(headers[name], value);
    for (const [name, value] of Object.entries(a.downstream)) r.res.setHeader(name, value);
  }
  return undefined;
}

function joined(current: string | string[] | undefined, more: string | string[]): string {
  return [...(current === undefined ? [] : [current].flat()), ...[more].flat()].join(',');
}

const NO_BODY: { body?: CheckBody; refused?: LocalReply } = Object.freeze({});

/**
 * The body a check carries, as Envoy's ext_authz filter buffers it (with_request_body): the whole
 * body when it fits maxRequestBytes; a longer one is 413 unless allowPartialMessage, which sends its
 * first maxRequestBytes (and says so in x-envoy-auth-partial-body). A request without a body, or an
 * upgrade, is checked without one. The 413 comes before any provider is asked, failOpen or not.
 */
async function bodyInCheck(req: IncomingMessage, res: ServerResponse, spec: RequestBodyInCheck): Promise<{ body?: CheckBody; refused?: LocalReply }> {
  if (!requestHasBody(req) || req.headers.upgrade !== undefined) return NO_BODY;
  const declared = Number(req.headers['content-length']);
  if (!spec.allowPartial && declared > spec.maxBytes) return tooLarge(req, res);
  // One byte past the limit tells a body that is too long from one that just fits.
  const start = await readBodyStart(req, res, spec.allowPartial ? spec.maxBytes : spec.maxBytes + 1);
  if (!start) return { refused: LocalReplies.downstreamDisconnect };
  if (start.bytes.length <= spec.maxBytes) return { body: { bytes: start.bytes, partial: false } };
  if (!spec.allowPartial) return tooLarge(req, res);
  return { body: { bytes: start.bytes.subarray(0, spec.maxBytes), partial: true } };
}

function tooLarge(req: IncomingMessage, res: ServerResponse): { refused: LocalReply } {
  // The rest of the body is not read: an HTTP/1 connection cannot carry another request after it.
  if (req.httpVersionMajor === 1) res.shouldKeepAlive = false;
  return { refused: LocalReplies.payloadTooLarge };
}
