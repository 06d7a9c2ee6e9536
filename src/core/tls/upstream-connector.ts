// Opens TLS connections to upstreams for a profile from upstream-tls.ts: for undici pools (HTTP/1.1)
// and node:http2 sessions alike. Every new connection reads its material then — the workload
// certificate from the identity provider, files by path and mtime — so a rotated certificate is used
// from the next connection on while open connections keep theirs; a SecureContext is only built
// when the material changed. Verification is never skipped unless the rule says insecureSkipVerify.
//
// Any failure after the TCP connect (handshake, chain, peer identity) becomes an UpstreamTlsError
// with a short reason for the access log's response details; a refused TCP connect stays what it is.

import { createHash } from 'node:crypto';
import { statSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { ConnectionOptions, PeerCertificate, SecureContext, TLSSocket } from 'node:tls';
import { checkServerIdentity, connect as tlsConnect, createSecureContext } from './node-tls.js';
import type { Logger } from 'pino';
import type { buildConnector } from 'undici';
import type { WorkloadCertificate } from '../pki/types.js';
import type { SecretReader } from './types.js';
import type { IstioMutualProfile, OriginationProfile, UpstreamTlsProfile } from './upstream-tls.js';
import { subjectAltNames } from './peer-identity.js';

export interface UpstreamConnectorOptions {
  /** Where `credentialName` lives: `<certsDir>/<name>/tls.crt|tls.key|ca.crt` (default `certs`). */
  readonly certsDir?: string;
  /**
   * Cluster mode: `credentialName` is the Secret of that name in the proxy's namespace (its keys as
   * the folder's files), as Istio reads it; certsDir is then not used for it.
   */
  readonly secrets?: SecretReader;
  /** Istio's connectionPool.tcp.connectTimeout default: 10 s. */
  readonly connectTimeoutMs?: number;
  readonly logger?: Logger;
  /** For spacing out repeated failure log lines. */
  readonly now?: () => number;
}

/** A TLS failure towards an upstream: counted as a connect failure (503 UF). */
export class UpstreamTlsError extends Error {
  readonly code = 'MESHGATE_UPSTREAM_TLS';
  /** Short, space-free: goes into `upstream_tls_error:<reason>`. */
  readonly reason: string;
  constructor(reason: string, message: string) {
    super(message);
    this.name = 'UpstreamTlsError';
    this.reason = reason;
  }
}

/**
 * Istio mTLS says so in ALPN, ahead of the protocol itself (`istio-http/1.1`, `istio`, `http/1.1`),
 * as Istio's client proxies do: a PERMISSIVE server terminates mTLS only for these, and hands other
 * TLS to its app. Servers pick the real protocol from the end of the list. A TCP stream offers
 * only `istio-peer-exchange` and `istio`, which the server sidecar takes to mean TCP.
 */
export function meshAlpn(alpn: readonly string[]): string[] {
  // No application protocol: a TCP stream, announced as Istio's client proxies announce one.
  if (alpn.length === 0) return ['istio-peer-exchange', 'istio'];
  return [...alpn.map((p) => `istio-${p}`), 'istio', ...alpn];
}

type Prepared = { readonly ok: true; readonly options: ConnectionOptions } | { readonly ok: false; readonly error: UpstreamTlsError };

interface FileVersion {
  readonly stamp: string;
  readonly text: string;
}

// Kubernetes Secret names are DNS subdomains; anything with a path separator could leave certsDir.
const CREDENTIAL_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const LOG_EVERY_MS = 10_000;

export class UpstreamConnector {
  readonly #certsDir: string;
  readonly #secrets: SecretReader | undefined;
  readonly #connectTimeoutMs: number;
  readonly #log: Logger | undefined;
  readonly #now: () => number;
  /** The context for the workload certificate last seen: rebuilt only when the certificate changes. */
  #istio: { cert: WorkloadCertificate; context: SecureContext } | undefined;
  /** Per set of configured files (not per SNI): rebuilt when one of the files changed. */
  readonly #fileContexts = new Map<string, { stamp: string; context: SecureContext }>();
  readonly #files = new Map<string, FileVersion>();
  readonly #lastLogged = new Map<string, number>();

  constructor(opts: UpstreamConnectorOptions = {}) {
    this.#certsDir = resolve(opts.certsDir ?? 'certs');
    this.#secrets = opts.secrets;
    this.#connectTimeoutMs = opts.connectTimeoutMs ?? 10_000;
    this.#log = opts.logger;
    this.#now = opts.now ?? Date.now;
  }

  /**
   * Starts a TLS connection to `host:port`; the socket emits `secureConnect` once the server is
   * verified. `onFailure` is called once if it fails before that, with an UpstreamTlsError for TLS
   * failures (the socket's own `error` event carries Node's raw error). Material that cannot be had
   * (no client certificate file, …) is reported without opening anything.
   */
  open(
    profile: UpstreamTlsProfile,
    host: string,
    port: number,
    alpn: readonly string[],
    onFailure: (err: Error) => void,
    connectTimeoutMs = this.#connectTimeoutMs,
  ): { ok: true; socket: TLSSocket } | { ok: false; error: UpstreamTlsError } {
    const prepared = this.#prepare(profile);
    if (!prepared.ok) {
      this.#report(`${host}:${port}`, prepared.error);
      return prepared;
    }
    const socket = tlsConnect({ ...prepared.options, host, port, ALPNProtocols: profile.kind === 'ISTIO_MUTUAL' ? meshAlpn(alpn) : [...alpn] });
    let tcpConnected = false;
    let settled = false;
    const timer = setTimeout(() => {
      socket.destroy(Object.assign(new Error(`connect to ${host}:${port} timed out`), { code: 'UND_ERR_CONNECT_TIMEOUT' }));
    }, connectTimeoutMs);
    timer.unref();
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 60_000);
    const onError = (err: Error & { code?: string }): void => {
      clearTimeout(timer);
      if (settled) return;
      settled = true;
      let failure: Error = err;
      // Before the TCP connect it is a plain connect failure (refused, unreachable, timed out).
      if (tcpConnected && err.code !== 'UND_ERR_CONNECT_TIMEOUT') {
        const tlsError = err instanceof UpstreamTlsError ? err : translate(err);
        this.#report(`${host}:${port}`, tlsError);
        failure = tlsError;
      }
      onFailure(failure);
    };
    socket.once('connect', () => (tcpConnected = true));
    socket.once('secureConnect', () => {
      clearTimeout(timer);
      settled = true;
      socket.off('error', onError);
    });
    // Before anyone else's listener, so onFailure has run when they see the error.
    socket.prependOnceListener('error', onError);
    return { ok: true, socket };
  }

  /** undici's `connect` option for a pool to one endpoint with `profile` (HTTP/1.1 only). */
  undiciConnect(profile: UpstreamTlsProfile, host: string, port: number, connectTimeoutMs = this.#connectTimeoutMs): buildConnector.connector {
    return (_opts, cb) => {
      let done = false;
      const opened = this.open(
        profile,
        host,
        port,
        ['http/1.1'],
        (err) => {
          if (done) return;
          done = true;
          cb(err, null);
        },
        connectTimeoutMs,
      );
      if (!opened.ok) return cb(opened.error, null);
      const socket = opened.socket;
      // undici attaches its own listeners once it has the socket; until then, errors are ours.
      const swallow = (): void => undefined;
      socket.on('error', swallow);
      socket.once('secureConnect', () => {
        socket.off('error', swallow);
        if (done) return;
        done = true;
        cb(null, socket);
      });
    };
  }

  #prepare(profile: UpstreamTlsProfile): Prepared {
    return profile.kind === 'ISTIO_MUTUAL' ? this.#prepareIstio(profile) : this.#prepareOrigination(profile);
  }

  #prepareIstio(profile: IstioMutualProfile): Prepared {
    let cert: WorkloadCertificate;
    try {
      cert = profile.identity.current();
    } catch (err) {
      return { ok: false, error: new UpstreamTlsError('no_workload_certificate', `no workload certificate: ${(err as Error).message}`) };
    }
    const last = this.#istio;
    let context: SecureContext;
    if (last && (last.cert === cert || (last.cert.certChainPem === cert.certChainPem && last.cert.keyPem === cert.keyPem && last.cert.rootCertPem === cert.rootCertPem))) {
      context = last.context;
    } else {
      try {
        context = createSecureContext({ cert: cert.certChainPem, key: cert.keyPem, ca: cert.rootCertPem });
      } catch (err) {
        return { ok: false, error: new UpstreamTlsError('workload_certificate_invalid', `workload certificate ${cert.spiffeId} unusable: ${(err as Error).message}`) };
      }
      this.#istio = { cert, context };
    }
    return {
      ok: true,
      options: {
        secureContext: context,
        servername: profile.sni,
        rejectUnauthorized: true,
        // Mesh certificates carry no DNS names: the SPIFFE URI is the server's identity.
        checkServerIdentity: (_host, peer) => checkPeerIdentity(profile.peerIdentities, peer),
      },
    };
  }

  #prepareOrigination(profile: OriginationProfile): Prepared {
    const material = this.#originationMaterial(profile);
    if (!material.ok) return material;
    const { stamp, ca, cert, key } = material;
    const cacheKey = JSON.stringify([profile.kind, profile.credentialName, profile.caCertificates, profile.clientCertificate, profile.privateKey, profile.caCertificatesPem]);
    let entry = this.#fileContexts.get(cacheKey);
    if (!entry || entry.stamp !== stamp) {
      try {
        const context = createSecureContext({ ...(ca ? { ca } : {}), ...(cert ? { cert } : {}), ...(key ? { key } : {}) });
        entry = { stamp, context };
        this.#fileContexts.set(cacheKey, entry);
      } catch (err) {
        return { ok: false, error: new UpstreamTlsError('credential_invalid', `TLS material for ${profile.sni ?? profile.verifyNames[0]} unusable: ${(err as Error).message}`) };
      }
    }
    const names = profile.verifyNames;
    return {
      ok: true,
      options: {
        secureContext: entry.context,
        ...(profile.sni ? { servername: profile.sni } : {}),
        rejectUnauthorized: !profile.insecureSkipVerify,
        checkServerIdentity: profile.insecureSkipVerify ? () => undefined : (_host, peer) => checkNames(names, peer),
      },
    };
  }

  /** CA, client certificate and key as they are on disk now, with a stamp that changes with them. */
  #originationMaterial(profile: OriginationProfile): { ok: true; stamp: string; ca?: string; cert?: string; key?: string } | { ok: false; error: UpstreamTlsError } {
    const missing = (reason: string, what: string): { ok: false; error: UpstreamTlsError } => ({ ok: false, error: new UpstreamTlsError(reason, what) });
    let ca: FileVersion | undefined;
    let cert: FileVersion | undefined;
    let key: FileVersion | undefined;
    if (profile.unusable) return missing('ca_certificate_ref_invalid', profile.unusable);
    if (profile.caCertificatesPem) ca = { stamp: `pem:${createHash('sha256').update(profile.caCertificatesPem).digest('hex').slice(0, 16)}`, text: profile.caCertificatesPem };
    if (profile.credentialName) {
      const name = profile.credentialName;
      if (!CREDENTIAL_NAME.test(name) || name.includes('..')) return missing('credential_invalid', `${JSON.stringify(name)} is not a valid credential name`);
      // The same keys in a Secret as in a folder: tls.crt / cert, tls.key / key, ca.crt / cacert, the
      // CA possibly in its own `<name>-cacert`.
      const first = (places: ReadonlyArray<readonly [string, string]>): FileVersion | undefined =>
        this.#secrets ? this.#firstSecretKey(places) : this.#firstFile(places.map(([folder, file]) => join(this.#certsDir, folder, file)));
      ca = first([[name, 'ca.crt'], [name, 'cacert'], [`${name}-cacert`, 'ca.crt'], [`${name}-cacert`, 'cacert']]);
      if (profile.kind === 'MUTUAL') {
        cert = first([[name, 'tls.crt'], [name, 'cert']]);
        key = first([[name, 'tls.key'], [name, 'key']]);
      }
    }
    if (profile.caCertificates) {
      // A configured CA that cannot be read must not silently widen trust to the public roots.
      ca = this.#file(resolve(profile.caCertificates));
      if (!ca) return missing('ca_certificates_unavailable', `cannot read caCertificates ${profile.caCertificates}`);
    }
    if (profile.kind === 'MUTUAL') {
      if (profile.clientCertificate) cert = this.#file(resolve(profile.clientCertificate));
      if (profile.privateKey) key = this.#file(resolve(profile.privateKey));
      if (!cert || !key) {
        const where = profile.credentialName ? `credential ${profile.credentialName}` : `${profile.clientCertificate ?? 'clientCertificate (unset)'} / ${profile.privateKey ?? 'privateKey (unset)'}`;
        return missing('client_certificate_unavailable', `MUTUAL needs a client certificate and key; none readable in ${where}`);
      }
    }
    return {
      ok: true,
      stamp: `${ca?.stamp ?? '-'}|${cert?.stamp ?? '-'}|${key?.stamp ?? '-'}`,
      ...(ca ? { ca: ca.text } : {}),
      ...(cert ? { cert: cert.text } : {}),
      ...(key ? { key: key.text } : {}),
    };
  }

  /** The first of these (Secret, key) pairs the proxy's namespace holds; stamped by its content. */
  #firstSecretKey(places: ReadonlyArray<readonly [string, string]>): FileVersion | undefined {
    for (const [secret, key] of places) {
      const text = this.#secrets!.get(secret)?.data[key];
      if (text !== undefined) return { stamp: `secret:${secret}/${key}@${createHash('sha256').update(text).digest('hex').slice(0, 16)}`, text };
    }
    return undefined;
  }

  #firstFile(paths: readonly string[]): FileVersion | undefined {
    for (const p of paths) {
      const f = this.#file(p);
      if (f) return f;
    }
    return undefined;
  }

  /** A file's text, re-read only when its size, mtime or inode changed. */
  #file(path: string): FileVersion | undefined {
    let stamp: string;
    try {
      const st = statSync(path);
      if (!st.isFile()) return undefined;
      stamp = `${path}@${st.ino}:${st.size}:${st.mtimeMs}`;
    } catch {
      this.#files.delete(path);
      return undefined;
    }
    const known = this.#files.get(path);
    if (known && known.stamp === stamp) return known;
    try {
      const version = { stamp, text: readFileSync(path, 'utf8') };
      this.#files.set(path, version);
      return version;
    } catch {
      return undefined;
    }
  }

  /** One log line per endpoint and reason every few seconds: a broken upstream fails every request. */
  #report(upstream: string, err: UpstreamTlsError): void {
    if (!this.#log) return;
    const key = `${upstream}|${err.reason}`;
    const now = this.#now();
    const last = this.#lastLogged.get(key);
    if (last !== undefined && now - last < LOG_EVERY_MS) return;
    if (this.#lastLogged.size > 1000) this.#lastLogged.clear();
    this.#lastLogged.set(key, now);
    this.#log.warn({ upstream, reason: err.reason }, `upstream TLS to ${upstream} failed: ${err.message}`);
  }
}

// ------------------------------------------------------------------ verification

/** Errors from checkServerIdentity carry the reason to report. */
function identityError(reason: string, message: string): Error {
  return new UpstreamTlsError(reason, message);
}

/** ISTIO_MUTUAL: the server's SPIFFE URI must be one the destination may have (exact match). */
export function checkPeerIdentity(expected: readonly string[], peer: PeerCertificate): Error | undefined {
  if (expected.length === 0) return undefined; // chain verification alone, as Istio with no SANs
  const uris = sanEntries(peer.subjectaltname, 'URI');
  if (uris.some((u) => expected.includes(u))) return undefined;
  const got = uris.length > 0 ? uris.join(', ') : 'no URI SAN';
  return identityError('peer_identity_mismatch', `server presented ${got}; expected ${expected.join(' or ')}`);
}

/** SIMPLE/MUTUAL: one of the names must match the certificate (DNS with wildcards, IP, or URI SAN). */
export function checkNames(names: readonly string[], peer: PeerCertificate): Error | undefined {
  for (const name of names) {
    if (name.includes('://')) {
      if (sanEntries(peer.subjectaltname, 'URI').includes(name)) return undefined;
    } else if (checkServerIdentity(name, peer) === undefined) {
      return undefined;
    }
  }
  const sans = peer.subjectaltname || 'no subjectAltName';
  return identityError('hostname_mismatch', `server certificate (${sans}) matches none of ${names.join(', ')}`);
}

/** Values of one kind from Node's `subjectaltname` string (the one peer-identity parser). */
export function sanEntries(subjectaltname: string | undefined, kind: 'URI' | 'DNS'): string[] {
  return subjectAltNames(subjectaltname).filter((n) => n.type === kind).map((n) => n.value);
}

/** Verification codes OpenSSL reports for a chain it would not accept. */
const CHAIN_ERRORS = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_SIGNATURE_FAILURE',
  'CERT_REVOKED',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'INVALID_CA',
  'INVALID_PURPOSE',
  'PATH_LENGTH_EXCEEDED',
]);

function translate(err: Error & { code?: string; reason?: string }): UpstreamTlsError {
  const code = err.code ?? '';
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') return new UpstreamTlsError('hostname_mismatch', err.message);
  if (CHAIN_ERRORS.has(code)) return new UpstreamTlsError(`certificate_verify_failed:${code}`, `server certificate not trusted: ${err.message}`);
  return new UpstreamTlsError(`handshake_failed:${code || 'unknown'}`, `TLS handshake failed: ${err.message}`);
}
