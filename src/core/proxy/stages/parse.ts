// The parse stage of the request pipeline: one request target and one authority per request, decided
// here once, before anything matches a route or a policy, so that what the routes, the authorization
// policy and the upstream see cannot differ (docs/request-limits.md has the rules and Envoy's names).
//
//   target     origin-form `/path?query` only: a `#fragment` is cut off (Envoy as Istio configures it
//              strips it rather than refusing); an absolute-form URI (`GET http://host/path`) gives
//              its path, and its authority wins over Host (RFC 9112 §3.2.2); the asterisk-form `*`
//              and anything else not starting with `/` is refused with 400, as Envoy refuses it.
//   authority  HTTP/2: `:authority` over `host`; HTTP/1: the absolute-form's authority over Host;
//              two Host headers, a Host with characters no authority has, or no authority at all on
//              HTTP/1.1 is 400. A trailing dot on the host is dropped (`example.com.:80` is
//              `example.com:80`, Envoy's strip_trailing_host_dot): the routes ignore it, so a policy
//              on `hosts` must not see a spelling the routes do not.
//   method     an upper-case token (400 otherwise). CONNECT's target is an authority (`host:port`),
//              which becomes its authority as Envoy's codec makes it; it has no path. It goes on
//              through authorization like any request, and only then is answered 404, as no route
//              matches CONNECT (stages/select.ts, stages/act.ts).
//   framing    HTTP/1.0 with Transfer-Encoding: answered, then the connection is closed (RFC 9112 §6.1);
//              a request line saying HTTP/2.0 on an HTTP/1 connection is 400.
//   limits     URL length (414), header count and bytes (431) from http-limits.ts.
//
// The request is made canonical in place (`req.url`, `host`, `:authority`), so that every later
// stage, the access log and the upstream read the same target and authority with no second parser.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { DEFAULT_HTTP_LIMITS, requestOverLimits, type HttpLimits } from '../http-limits.js';
import { badRequest, type LocalReply } from '../respond.js';
import { stripTrailingHostDot } from '../../routing/host-index.js';

export type TargetResult = { readonly ok: true } | { readonly ok: false; readonly reply: LocalReply };

const OK: TargetResult = Object.freeze({ ok: true });

/**
 * RFC 3986 authority characters (reg-name, IP literal, port), as Envoy's authority check allows
 * them, without `@`: userinfo has no place in an HTTP authority (RFC 9110 §4.2.4), in Host and
 * `:authority` as in an absolute-form target, and a backend that reads `u@internal.example.com` as
 * a URL authority would see a host no route or policy saw.
 */
const AUTHORITY = /^[A-Za-z0-9\-._~%!$&'()*+,;=:[\]]*$/;

/** Makes `req` canonical, or says why it is refused. */
export function parseRequestTarget(req: IncomingMessage, res: ServerResponse, limits: HttpLimits = DEFAULT_HTTP_LIMITS): TargetResult {
  const result = parse(req, res, limits);
  // A request refused here may have a body nobody reads: its HTTP/1 connection ends with the answer.
  if (!result.ok && req.httpVersionMajor === 1) res.shouldKeepAlive = false;
  return result;
}

function parse(req: IncomingMessage, res: ServerResponse, limits: HttpLimits): TargetResult {
  const over = requestOverLimits(req, limits);
  if (over) return { ok: false, reply: over };
  const method = req.method ?? '';
  // Istio's semantics: methods are case-sensitive tokens and Envoy refuses lower-case ones (only HTTP/2 can send them).
  if (!/^[A-Z][A-Z0-9_-]*$/.test(method)) return refuse('invalid_method');
  const h2 = req.httpVersionMajor >= 2;
  // No route meshgate compiles matches CONNECT (Istio configures no connect_matcher), but Envoy's
  // router says so only after the RBAC filter has run: a denied peer gets 403, an allowed one 404
  // (isConnect, in the later stages). (A sidecar's outbound port tunnels HTTP/1 CONNECT before any
  // request reaches here.) HTTP/1's authority-form target is the authority, over Host.
  if (method === 'CONNECT') return connectTarget(req, h2);
  // Node's HTTP/1 parser takes `HTTP/2.0` in a request line (for h2c's `PRI * HTTP/2.0` preface):
  // such a request would pass for HTTP/2 here and skip the duplicate-Host and HTTP/1.0 rules.
  // Envoy's HTTP/1 codec refuses the version; only node:http2 makes real HTTP/2 requests.
  if (h2 && !('stream' in req)) return refuse('http1.codec_error');
  let url = req.url ?? '';
  let authority: string | undefined;

  const hash = url.indexOf('#');
  if (hash >= 0) url = url.slice(0, hash);
  if (!url.startsWith('/')) {
    const absolute = /^(https?):\/\/([^/?]*)(.*)$/i.exec(url);
    if (!absolute) return refuse('absolute_path_rejected');
    authority = absolute[2]!;
    // Userinfo (RFC 9110 §4.2.4) is refused with the other authority characters below.
    if (authority === '') return refuse('invalid_authority');
    const rest = absolute[3]!;
    url = rest.startsWith('/') ? rest : `/${rest}`;
  }

  if (h2) {
    const pseudo = req.headers[':authority'];
    authority ??= typeof pseudo === 'string' && pseudo !== '' ? pseudo : undefined;
  } else {
    let hosts = 0;
    const raw = req.rawHeaders;
    for (let i = 0; i < raw.length; i += 2) if (raw[i]!.length === 4 && raw[i]!.toLowerCase() === 'host') hosts++;
    if (hosts > 1) return refuse('duplicate_host_header');
  }
  authority ??= req.headers.host;
  if (authority === undefined || authority === '') {
    if (!h2 && req.httpVersion === '1.0') authority = '';
    else return refuse('missing_host_header');
  }
  if (!AUTHORITY.test(authority)) return refuse('invalid_authority');
  authority = stripTrailingHostDot(authority);

  if (!h2 && req.httpVersion === '1.0' && req.headers['transfer-encoding'] !== undefined) {
    res.shouldKeepAlive = false;
    res.setHeader('connection', 'close');
  }
  if (url !== req.url) req.url = url;
  req.headers.host = authority;
  if (h2) req.headers[':authority'] = authority;
  return OK;
}

/** CONNECT: one authority (HTTP/1's request target, HTTP/2's `:authority`) and no path. */
function connectTarget(req: IncomingMessage, h2: boolean): TargetResult {
  if (h2 && !('stream' in req)) return refuse('http1.codec_error');
  const given = h2 ? req.headers[':authority'] : req.url;
  if (typeof given !== 'string' || given === '' || given.startsWith('/') || !AUTHORITY.test(given)) return refuse('invalid_authority');
  const authority = stripTrailingHostDot(given);
  req.headers.host = authority;
  if (h2) req.headers[':authority'] = authority;
  return OK;
}

/** Whether the request is a CONNECT, which has no path and which no route matches. */
export function isConnect(req: IncomingMessage): boolean {
  return req.method === 'CONNECT';
}

function refuse(details: string): TargetResult {
  return { ok: false, reply: badRequest(details) };
}
