// The protobuf messages of Envoy's Authorization service (envoy.service.auth.v3), written and read
// by hand: the CheckRequest meshgate sends and the parts of a CheckResponse it acts on. Only the
// proto3 wire format is needed (varints, length-delimited fields), and the field numbers are those
// of external_auth.proto and attribute_context.proto; unknown fields of an answer are skipped.

import { bufOf, bytesField, fields, first, msg, numOf, str, textOf, uint, type Fields } from './protobuf-wire.js';

/** What a CheckRequest says about one request (AttributeContext). */
export interface CheckAttributes {
  readonly source: { readonly address: string; readonly port: number; readonly principal?: string | undefined };
  readonly destination: { readonly address: string; readonly port: number; readonly principal?: string | undefined };
  readonly timeMs: number;
  readonly http: {
    readonly id: string;
    readonly method: string;
    /** Lower-case names; pseudo-headers (`:authority`, `:method`, `:path`) included, as Envoy sends them. */
    readonly headers: ReadonlyArray<readonly [string, string]>;
    readonly path: string;
    readonly host: string;
    readonly scheme: string;
    readonly size?: number | undefined;
    readonly protocol: string;
    /** includeRequestBodyInCheck: the body (or its start); `body` (string) unless packAsBytes, then `raw_body`. */
    readonly body?: Buffer;
    readonly packAsBytes?: boolean;
  };
}

/** A CheckResponse, as far as the decision goes. */
export interface CheckAnswer {
  /** google.rpc.Status code: 0 (OK) allows. */
  readonly code: number;
  /** DeniedHttpResponse.status (0 when unset). */
  readonly deniedStatus: number;
  readonly deniedBody: string;
  /** Denied: to the client. OK: onto the upstream request. `append` as HeaderValueOption says. */
  readonly headers: ReadonlyArray<HeaderOption>;
  /** OkHttpResponse.headers_to_remove. */
  readonly headersToRemove: readonly string[];
  /** OkHttpResponse.response_headers_to_add: to the client. */
  readonly responseHeaders: ReadonlyArray<HeaderOption>;
}

export interface HeaderOption {
  readonly key: string;
  readonly value: string;
  readonly append: boolean;
}

// ---------------------------------------------------------------- writing

function peer(p: CheckAttributes['source']): Buffer {
  // Peer.address (Address.socket_address: SocketAddress.address = 2, port_value = 3), Peer.principal = 4.
  return Buffer.concat([msg(1, msg(1, str(2, p.address), uint(3, p.port))), str(4, p.principal)]);
}

/** HttpRequest.body (11, a string: the bytes as they are, as Envoy copies them) or raw_body (12). */
function bodyOf(h: CheckAttributes['http']): Buffer {
  return h.body && h.body.length > 0 ? bytesField(h.packAsBytes ? 12 : 11, h.body) : Buffer.alloc(0);
}

/** CheckRequest{attributes} for one request. */
export function encodeCheckRequest(a: CheckAttributes): Buffer {
  const h = a.http;
  const headers = h.headers.map(([k, v]) => msg(3, str(1, k), str(2, v)));
  const http = Buffer.concat([str(1, h.id), str(2, h.method), ...headers, str(4, h.path), str(5, h.host), str(6, h.scheme), uint(9, h.size), str(10, h.protocol), bodyOf(h)]);
  const time = Buffer.concat([uint(1, Math.floor(a.timeMs / 1000)), uint(2, (a.timeMs % 1000) * 1_000_000)]);
  const request = Buffer.concat([msg(1, time), bytesField(2, http)]);
  return msg(1, msg(1, peer(a.source)), msg(2, peer(a.destination)), msg(4, request));
}

// ---------------------------------------------------------------- reading

function headerOptions(f: Fields, n: number): HeaderOption[] {
  return (f.get(n) ?? []).map((v) => {
    const option = fields(bufOf(v));
    const header = fields(bufOf(first(option, 1)));
    // HeaderValueOption.append is a BoolValue; Envoy's ext_authz takes it as false when unset.
    const append = numOf(first(fields(bufOf(first(option, 2))), 1)) === 1;
    return { key: textOf(first(header, 1)).toLowerCase(), value: textOf(first(header, 2)), append };
  });
}

/** A CheckResponse; throws on bytes that are not one (the caller answers that as an error). */
export function decodeCheckResponse(buf: Buffer): CheckAnswer {
  const top = fields(buf);
  const code = numOf(first(fields(bufOf(first(top, 1))), 1));
  const denied = top.has(2) ? fields(bufOf(first(top, 2))) : undefined;
  const ok = top.has(3) ? fields(bufOf(first(top, 3))) : undefined;
  return {
    code,
    deniedStatus: denied ? numOf(first(fields(bufOf(first(denied, 1))), 1)) : 0,
    deniedBody: denied ? textOf(first(denied, 3)) : '',
    headers: denied ? headerOptions(denied, 2) : ok ? headerOptions(ok, 2) : [],
    headersToRemove: ok ? (ok.get(5) ?? []).map((v) => textOf(v).toLowerCase()) : [],
    responseHeaders: ok ? headerOptions(ok, 6) : [],
  };
}
