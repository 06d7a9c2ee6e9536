// The request pipeline (docs/request-pipeline.md): the ordered stages every HTTP request on every
// listener goes through — gateway ports and TLS servers, a sidecar's inbound and outbound sides.
// Each stage is one file in ./stages with one contract (stages/exchange.ts); this file only lists
// them in order, per role, and runs them. A role chooses its list and its route table and adds no
// request handling of its own. Accepting the connection (timeouts, limits, drain) came before, in
// accept.ts; the access log line, metrics and span are written when the response ends (observe).
//
//   parse       one request target and one authority, Envoy's header and URL limits   stages/parse.ts
//   observe     the request's record opened: log, metrics and span come from it        stages/observe.ts
//   normalize   upgrade allow-list, Istio's path normalization, the request's facts    stages/normalize.ts
//   acme        ACME HTTP-01 answers (gateway plaintext ports only)                    stages/acme-challenge.ts
//   select      route config, virtual host, route (a lookup; 421 for another server)   stages/select.ts
//   authn       RequestAuthentication (JWT)                                            stages/authenticate.ts
//   authz       AuthorizationPolicy                                                    stages/authorize.ts
//   routed      select's misses answered: 404 NR, unknown hosts, httpsRedirect         stages/select.ts
//   cors        preflights answered, CORS headers set                                  stages/cors.ts
//   limit       RateLimitPolicy, EnvoyFilter local rate limits                         stages/rate-limit.ts
//               (an EnvoyFilter's also before authn, before authz or after fault)
//   fault       delay / abort                                                          stages/fault.ts
//   act         redirect | direct response | forward | local app                       stages/act.ts
//
// A failure at any stage is a typed LocalReply, written by respond.ts through the exchange's `reply`.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { UpgradeTunnel } from './upgrade-exchange.js';
import { parseRequestTarget } from './stages/parse.js';
import { openExchange } from './stages/observe.js';
import { normalize } from './stages/normalize.js';
import { acmeChallenge } from './stages/acme-challenge.js';
import { routed, select } from './stages/select.js';
import { authenticate } from './stages/authenticate.js';
import { authorize } from './stages/authorize.js';
import { cors } from './stages/cors.js';
import { rateLimitAt } from './stages/rate-limit.js';
import { fault } from './stages/fault.js';
import { act, actLocalApp, internalError } from './stages/act.js';
import { DONE, type Exchange, type HttpHandlerContext, type ListenerInfo, type Pipeline } from './stages/exchange.js';

export type { HttpHandlerContext, ListenerInfo, LocalApp, RouteConfigSelector, UnknownHostPolicy, Pipeline } from './stages/exchange.js';
export { authorityOf, rawPath, requestFacts } from './stages/normalize.js';
export { redirectLocation } from './stages/act.js';

// The limit stages: each counts the limits placed at its point (policy/envoy-filter-position.ts).
// A listener without a stage between two points counts both at one.
const limitFirst = rateLimitAt('before-authn');
const limitBeforeAuthz = rateLimitAt('before-authz');
const limit = rateLimitAt('after-authz');
const limitLast = rateLimitAt('after-fault');

/** The stage lists, one per kind of listener (after parse and observe, which every request gets). */
export const Pipelines = {
  /** A gateway's plaintext port: the whole pipeline, with ACME HTTP-01 answers before routing. */
  gatewayPlaintext: Object.freeze([normalize, acmeChallenge, select, limitFirst, authenticate, limitBeforeAuthz, authorize, routed, cors, limit, fault, limitLast, act]),
  /** A gateway's TLS server (and the default). */
  gateway: Object.freeze([normalize, select, limitFirst, authenticate, limitBeforeAuthz, authorize, routed, cors, limit, fault, limitLast, act]),
  /** A sidecar's inbound side: no route table; what passes authorization and the port's EnvoyFilter limits goes to the app. */
  sidecarInbound: Object.freeze([normalize, limitFirst, authenticate, limitBeforeAuthz, authorize, rateLimitAt('after-authz', 'after-fault'), actLocalApp]),
  /** A sidecar's outbound side: the gateway's routing, limits and faults; no workload of its own to authorize for. */
  sidecarOutbound: Object.freeze([normalize, select, rateLimitAt('before-authn', 'before-authz'), routed, cors, limit, fault, limitLast, act]),
} satisfies Record<string, Pipeline>;

/**
 * `tunnel` is set for an upgrade request (upgrade.ts): it takes every decision any request takes,
 * and only its upstream exchange is different.
 */
export function handleHttpRequest(req: IncomingMessage, res: ServerResponse, listener: ListenerInfo, ctx: HttpHandlerContext, tunnel?: UpgradeTunnel): void {
  const port = listener.requestPort ? listener.requestPort(req) : listener.port;
  // parse runs before the record opens, so the access log and the span name the canonical target.
  const target = parseRequestTarget(req, res, ctx.limits);
  const ex = openExchange(req, res, listener, ctx, port, tunnel);
  if (!target.ok) return ex.reply(target.reply);
  // A stage that throws is a bug: answered and logged like one, never left to the server's 'request'
  // event, where it would end the process and every request in it.
  try {
    run(listener.stages ?? Pipelines.gateway, ex, 0);
  } catch (err) {
    internalError(ex, err);
  }
}

/** Runs the stages from `from` on; synchronous until a stage has to wait, then from where it resumed. */
function run(stages: Pipeline, ex: Exchange, from: number): void {
  for (let i = from; i < stages.length; i++) {
    const result = stages[i]!(ex);
    if (result === undefined) continue;
    if (result === DONE) return;
    if (result instanceof Promise) {
      result.then(
        (r) => {
          // The client gave up while the stage waited: nothing left to answer.
          if (ex.res.destroyed || r === DONE) return;
          if (r !== undefined) return ex.reply(r);
          try {
            run(stages, ex, i + 1);
          } catch (err) {
            internalError(ex, err);
          }
        },
        (err: unknown) => internalError(ex, err),
      );
      return;
    }
    return ex.reply(result);
  }
}
