// RequestAuthentication for one workload (a gateway or a sidecar's inbound side), compiled once per
// snapshot: the jwtRules of every policy that selects it (root namespace, own namespace, by labels,
// as AuthorizationPolicy selects), and the request's tokens checked against them. What Envoy's
// jwt_authn filter does as Istio configures it: a request with no token passes (an
// AuthorizationPolicy on `requestPrincipals` is what requires one); a token that fails — unknown
// issuer, bad signature, expired, wrong audience — is a 401; a valid one becomes `request.auth`
// (principal `iss/sub`, audiences, presenter, claims) and, unless `forwardOriginalToken`, the header
// that carried it is removed before the request goes on.

import type { IncomingHttpHeaders } from 'node:http';
import type { CryptoKey, JSONWebKeySet, JWTPayload } from 'jose';
import type { Resource } from '../model/resource.js';
import { compareByCreation } from '../model/resource.js';
import { parseDuration } from '../config/duration.js';
import { appliesTo } from './authorization.js';
import { isObj, list, obj, strings } from './authz-rules.js';
import { parseJwks, type JwksCache } from './jwks-cache.js';
import { tokensInCookies, tokensInHeader } from './jwt-token-extract.js';
import type { WorkloadRef } from './peer-authentication.js';

/** What a verified token says, as AuthorizationPolicy reads it (`request.auth.*`, `requestPrincipals`). */
export interface RequestAuth {
  /** `<iss>/<sub>`. */
  readonly principal: string;
  readonly audiences: readonly string[];
  /** `azp`. */
  readonly presenter?: string;
  readonly claims: Readonly<Record<string, unknown>>;
}

/** Where a token was found, so that it can be removed again (a header; a parameter or a cookie stays, as in Envoy). */
type Location = { readonly header: string; readonly prefix: string } | { readonly param: string } | { readonly cookie: string };

interface Provider {
  readonly issuer: string;
  readonly audiences: readonly string[];
  readonly keys: { readonly inline: JSONWebKeySet } | { readonly uri: string; readonly timeoutMs: number };
  readonly locations: readonly Location[];
  readonly forward: boolean;
  readonly payloadHeader?: string;
  readonly claimHeaders: ReadonlyArray<{ readonly header: string; readonly claim: string }>;
}

/** Header edits a verified token asks for on its way upstream. */
export interface AuthnHeaderEdits {
  readonly remove: readonly string[];
  readonly set: Readonly<Record<string, string>>;
}

export type AuthnResult =
  | { readonly ok: true; readonly auth?: RequestAuth; readonly edits?: AuthnHeaderEdits }
  | { readonly ok: false; /** Envoy's status text: `Jwt verification fails`, `Jwt is expired`, … */ readonly reason: string };

export interface RequestAuthenticator {
  /** No jwtRules apply: nothing to read, nothing to check. */
  readonly empty: boolean;
  /** Synchronous when the request carries no token (the common case). */
  authenticate(headers: IncomingHttpHeaders, url: string): AuthnResult | Promise<AuthnResult>;
}

const DEFAULT_LOCATIONS: readonly Location[] = [{ header: 'authorization', prefix: 'Bearer ' }, { param: 'access_token' }];
const DEFAULT_JWKS_TIMEOUT_MS = 5_000;
const NO_TOKEN: AuthnResult = Object.freeze({ ok: true });
/** Envoy's jwt_authn status texts, which are also its 401 bodies. */
export const JwtFailures = {
  badFormat: 'Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections',
  unknownIssuer: 'Jwt issuer is not configured',
  verification: 'Jwt verification fails',
  expired: 'Jwt is expired',
  notYetValid: 'Jwt not yet valid',
  audience: 'Audiences in Jwt are not allowed',
  noKey: "Jwks doesn't have key to match kid or alg from Jwt",
  fetch: 'Jwks remote fetch is failed',
} as const;

export function compileRequestAuthentication(resources: readonly Resource[], workload: WorkloadRef, jwks: JwksCache, rootNamespace = 'istio-system'): RequestAuthenticator {
  const providers: Provider[] = [];
  const seen = new Set<string>();
  const applicable = resources.filter((r) => r.kind === 'RequestAuthentication' && appliesTo(r, workload, rootNamespace)).sort(compareByCreation);
  for (const r of applicable) {
    for (const rule of list(obj(r.spec).jwtRules)) {
      const p = isObj(rule) ? compileProvider(rule) : undefined;
      // One provider per issuer: the oldest policy's rule wins, as validation asks of one policy.
      if (p && !seen.has(p.issuer)) {
        seen.add(p.issuer);
        providers.push(p);
      }
    }
  }
  if (providers.length === 0) return EMPTY;
  return new JwtProviders(providers, jwks);
}

const EMPTY: RequestAuthenticator = Object.freeze({ empty: true, authenticate: () => NO_TOKEN });

function compileProvider(rule: Record<string, unknown>): Provider | undefined {
  const issuer = typeof rule.issuer === 'string' ? rule.issuer : '';
  if (issuer === '') return undefined;
  const timeoutMs = typeof rule.timeout === 'string' ? (parseDuration(rule.timeout) ?? DEFAULT_JWKS_TIMEOUT_MS) : DEFAULT_JWKS_TIMEOUT_MS;
  let keys: Provider['keys'];
  // `jwks_uri`: the old spelling Istio's schema still accepts.
  const uri: unknown = rule.jwksUri ?? (rule as { jwks_uri?: unknown }).jwks_uri;
  if (typeof rule.jwks === 'string') {
    let set: JSONWebKeySet;
    try {
      set = parseJwks(rule.jwks);
    } catch {
      set = { keys: [] }; // validation refuses this; an unreadable set verifies nothing
    }
    keys = { inline: set };
  } else if (typeof uri === 'string') {
    keys = { uri, timeoutMs };
  } else {
    keys = { inline: { keys: [] } };
  }
  const locations: Location[] = [];
  for (const h of list(rule.fromHeaders)) {
    if (isObj(h) && typeof h.name === 'string') locations.push({ header: h.name.toLowerCase(), prefix: typeof h.prefix === 'string' ? h.prefix : '' });
  }
  for (const p of strings(rule.fromParams)) locations.push({ param: p });
  for (const name of strings(rule.fromCookies)) locations.push({ cookie: name });
  const explicit = list(rule.fromHeaders).length > 0 || list(rule.fromParams).length > 0 || list(rule.fromCookies).length > 0;
  const claimHeaders = list(rule.outputClaimToHeaders)
    .filter(isObj)
    .flatMap((o) => (typeof o.header === 'string' && typeof o.claim === 'string' ? [{ header: o.header.toLowerCase(), claim: o.claim }] : []));
  return {
    issuer,
    audiences: strings(rule.audiences),
    keys,
    locations: explicit ? locations : DEFAULT_LOCATIONS,
    forward: rule.forwardOriginalToken === true,
    ...(typeof rule.outputPayloadToHeader === 'string' ? { payloadHeader: rule.outputPayloadToHeader.toLowerCase() } : {}),
    claimHeaders,
  };
}

interface Found {
  readonly token: string;
  readonly at: Location;
}

class JwtProviders implements RequestAuthenticator {
  readonly empty = false;
  readonly #byIssuer = new Map<string, Provider>();
  /** Every place any provider reads, once each. */
  readonly #locations: Location[] = [];
  /**
   * Every header a verified token writes (outputPayloadToHeader, outputClaimToHeaders). A client's own
   * value of one is removed from every request, with a token or without: only a verified token may
   * speak there (Envoy forwards it when no token is sent, which lets a client claim `admins` to a
   * backend that trusts the header).
   */
  readonly #outputHeaders: readonly string[];
  readonly #noToken: AuthnResult;

  constructor(
    providers: readonly Provider[],
    private readonly jwks: JwksCache,
  ) {
    const keys = new Set<string>();
    const outputs = new Set<string>();
    for (const p of providers) {
      if (p.payloadHeader) outputs.add(p.payloadHeader);
      for (const c of p.claimHeaders) outputs.add(c.header);
      this.#byIssuer.set(p.issuer, p);
      for (const l of p.locations) {
        const k = locationKey(l);
        if (!keys.has(k)) {
          keys.add(k);
          this.#locations.push(l);
        }
      }
    }
    this.#outputHeaders = [...outputs];
    this.#noToken = outputs.size === 0 ? NO_TOKEN : Object.freeze({ ok: true, edits: { remove: this.#outputHeaders, set: {} } });
  }

  authenticate(headers: IncomingHttpHeaders, url: string): AuthnResult | Promise<AuthnResult> {
    const found = this.#extract(headers, url);
    if (found.length === 0) return this.#noToken;
    return this.#verifyAll(found);
  }

  #extract(headers: IncomingHttpHeaders, url: string): Found[] {
    const out: Found[] = [];
    let query: URLSearchParams | undefined;
    for (const at of this.#locations) {
      if ('header' in at) {
        const raw = headers[at.header];
        // A value without the prefix (`Basic …` where `Bearer ` is expected) holds no token for this location.
        for (const v of Array.isArray(raw) ? raw : raw === undefined ? [] : [raw]) for (const token of tokensInHeader(v, at.prefix)) out.push({ token, at });
      } else if ('cookie' in at) {
        for (const token of tokensInCookies(headers.cookie, at.cookie)) out.push({ token, at });
      } else {
        const q = url.indexOf('?');
        if (q < 0) continue;
        query ??= new URLSearchParams(url.slice(q + 1));
        for (const token of query.getAll(at.param)) if (token !== '') out.push({ token, at });
      }
    }
    return out;
  }

  async #verifyAll(found: readonly Found[]): Promise<AuthnResult> {
    let auth: RequestAuth | undefined;
    const remove = new Set<string>(this.#outputHeaders);
    const set: Record<string, string> = {};
    const checked = new Set<string>();
    const { decodeJwt } = await loadJose();
    for (const f of found) {
      if (checked.has(f.token)) continue;
      checked.add(f.token);
      let payload: JWTPayload;
      try {
        payload = decodeJwt(f.token);
      } catch {
        return fail(JwtFailures.badFormat);
      }
      const provider = typeof payload.iss === 'string' ? this.#byIssuer.get(payload.iss) : undefined;
      if (!provider || !provider.locations.some((l) => locationKey(l) === locationKey(f.at))) return fail(JwtFailures.unknownIssuer);
      const verified = await this.#verify(provider, f.token);
      if (!verified.ok) return verified;
      auth = verified.auth;
      if (!provider.forward) {
        // Envoy removes a header that carried the token; a query parameter stays (it does not rewrite the path).
        for (const l of found) if (l.token === f.token && 'header' in l.at) remove.add(l.at.header);
      }
      if (provider.payloadHeader) set[provider.payloadHeader] = Buffer.from(JSON.stringify(verified.payload)).toString('base64url');
      for (const { header, claim } of provider.claimHeaders) {
        const v = claimHeaderValue(verified.payload[claim]);
        if (v !== undefined) set[header] = v;
      }
    }
    const edits: AuthnHeaderEdits = { remove: [...remove], set };
    return auth ? { ok: true, auth, edits } : { ok: true, edits };
  }

  async #verify(p: Provider, token: string): Promise<{ ok: true; auth: RequestAuth; payload: JWTPayload } | { ok: false; reason: string }> {
    const opts = { issuer: p.issuer, ...(p.audiences.length > 0 ? { audience: [...p.audiences] } : {}) };
    try {
      let payload: JWTPayload;
      if ('inline' in p.keys) {
        const jose = await loadJose();
        payload = await verifyWithSet(jose, token, p.keys.inline, opts);
      } else {
        payload = await this.#verifyRemote(p.keys.uri, p.keys.timeoutMs, token, opts);
      }
      return { ok: true, auth: toAuth(payload), payload };
    } catch (err) {
      return fail(failureOf(err));
    }
  }

  async #verifyRemote(uri: string, timeoutMs: number, token: string, opts: { issuer: string; audience?: string[] }): Promise<JWTPayload> {
    const keys = await this.jwks.keys(uri, timeoutMs);
    if (!keys) throw new JwksUnavailable();
    const jose = await loadJose();
    try {
      return await verifyWithSet(jose, token, keys, opts);
    } catch (err) {
      if ((err as { code?: string }).code !== 'ERR_JWKS_NO_MATCHING_KEY') throw err;
      // The issuer may have rotated its keys since the last fetch: fetch once more, then decide.
      const again = await this.jwks.keys(uri, timeoutMs, true);
      if (!again || again === keys) throw err;
      return await verifyWithSet(jose, token, again, opts);
    }
  }
}

class JwksUnavailable extends Error {
  readonly code = 'MESHGATE_JWKS_UNAVAILABLE';
}

type Jose = typeof import('jose');
let joseLoaded: Promise<Jose> | undefined;
/**
 * jose (some 45 modules) is loaded with the first token there is to check: a proxy whose traffic
 * carries none, as most sidecars', never holds it (docs/benchmarks.md, the sidecar's memory).
 */
function loadJose(): Promise<Jose> {
  return (joseLoaded ??= import('jose'));
}

/** One key set per fetched or inline JWKS, kept as long as that JWKS is. */
const localSets = new WeakMap<JSONWebKeySet, ReturnType<Jose['createLocalJWKSet']>>();
function localSet(jose: Jose, keys: JSONWebKeySet): ReturnType<Jose['createLocalJWKSet']> {
  let s = localSets.get(keys);
  if (!s) {
    s = jose.createLocalJWKSet(keys);
    localSets.set(keys, s);
  }
  return s;
}

/**
 * The token's payload once a key of `keys` verifies it. A token without a key id may be signed by
 * any key of its algorithm: each is tried, as Envoy tries every key of the set (jose alone refuses
 * such a token whenever the set holds two keys, as issuers do while they rotate).
 */
async function verifyWithSet(jose: Jose, token: string, keys: JSONWebKeySet, opts: { issuer: string; audience?: string[] }): Promise<JWTPayload> {
  try {
    return (await jose.jwtVerify(token, localSet(jose, keys), opts)).payload;
  } catch (err) {
    if ((err as { code?: string }).code !== 'ERR_JWKS_MULTIPLE_MATCHING_KEYS') throw err;
    for await (const key of err as AsyncIterable<CryptoKey>) {
      try {
        return (await jose.jwtVerify(token, key, opts)).payload;
      } catch (e) {
        // Another key's signature: try the next. A good signature with bad claims (expired) is the answer.
        if ((e as { code?: string }).code !== 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED') throw e;
      }
    }
    throw new jose.errors.JWSSignatureVerificationFailed();
  }
}

function fail(reason: string): { ok: false; reason: string } {
  return { ok: false, reason };
}

function failureOf(err: unknown): string {
  const e = err as { code?: string; claim?: string };
  switch (e.code) {
    case 'ERR_JWT_EXPIRED':
      return JwtFailures.expired;
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
      if (e.claim === 'aud') return JwtFailures.audience;
      if (e.claim === 'nbf' || e.claim === 'iat') return JwtFailures.notYetValid;
      if (e.claim === 'iss') return JwtFailures.unknownIssuer;
      return JwtFailures.verification;
    case 'ERR_JWKS_NO_MATCHING_KEY':
      return JwtFailures.noKey;
    case 'MESHGATE_JWKS_UNAVAILABLE':
      return JwtFailures.fetch;
    case 'ERR_JWS_INVALID':
    case 'ERR_JWT_INVALID':
      return JwtFailures.badFormat;
    default:
      return JwtFailures.verification;
  }
}

function toAuth(payload: JWTPayload): RequestAuth {
  const aud = payload.aud === undefined ? [] : Array.isArray(payload.aud) ? payload.aud : [payload.aud];
  return {
    principal: `${payload.iss ?? ''}/${payload.sub ?? ''}`,
    audiences: aud,
    ...(typeof payload.azp === 'string' ? { presenter: payload.azp } : {}),
    claims: payload,
  };
}

/**
 * A claim as a header value, in the form node hands headers over (one char per byte): its UTF-8 bytes,
 * as Envoy writes them. A claim holding CR, LF or NUL is no header value: none is written (the client's
 * header of that name is gone already), where writing it failed the request as an upstream error (502).
 */
function claimHeaderValue(v: unknown): string | undefined {
  const text = claimText(v);
  if (text === undefined || /[\r\n\0]/.test(text)) return undefined;
  return /[^\x00-\x7f]/.test(text) ? Buffer.from(text, 'utf8').toString('latin1') : text;
}

/** Strings as they are, numbers and booleans printed, lists of those joined with commas. */
function claimText(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v) && v.every((x) => ['string', 'number', 'boolean'].includes(typeof x))) return v.join(',');
  return undefined;
}

function locationKey(l: Location): string {
  return 'header' in l ? `h:${l.header}:${l.prefix}` : 'cookie' in l ? `c:${l.cookie}` : `q:${l.param}`;
}
