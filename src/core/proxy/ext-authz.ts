// External authorization in the authorize stage (docs/tasks/external-authorization.md): a request
// that CUSTOM policies matched is sent to each provider they name, in order, before DENY and ALLOW
// count. Every provider must allow; the first that denies answers the client with its own status,
// body and the headers it may send (flag UAEX); one that cannot be asked answers statusOnError
// (flag UAEX), unless it fails open. A policy naming a provider the mesh config does not define, or
// one that cannot be used, denies as Istio's does: 403 `RBAC: access denied`, the policy named
// `…-deny-due-to-bad-CUSTOM-action` in the access log. When all allow, the headers they chose go
// onto the upstream request (headersToUpstreamOnAllow) and the client's response
// (headersToDownstreamOnAllow).

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ExtAuthzAsk } from '../policy/authorization.js';
import type { ExtAuthzProvider } from '../policy/ext-authz-providers.js';
import type { RequestFacts } from '../routing/types.js';
import { checkHttp, type CheckContext, type CheckOutcome, type CheckPeers, type CheckSubject } from './ext-authz-check.js';
import { checkGrpc } from './ext-authz-grpc.js';
import { extAuthzDenied, extAuthzError, rbacDenied, type LocalReply } from './respond.js';

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
    const outcome = provider.kind === 'http' ? await checkHttp(provider, subject, r.ctx) : await checkGrpc(provider, subject, r.ctx);
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
