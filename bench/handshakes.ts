// New TLS handshakes per second: every connection does a full handshake, sends one request, reads
// the answer, and closes. The load generator is `openssl s_time -new`: unlike wrk and h2load, which
// resume TLS sessions when they reconnect (about every other wrk reconnection is a resumption,
// which skips the certificate signature), s_time -new starts each connection without a session, so
// every one is a full handshake with the server signing. One s_time makes one connection at a time;
// several run side by side to keep the server busy.
//
// s_time sends "GET <path> HTTP/1.0" with nothing else; the path given to it ends the request line
// early and adds the Host and Connection headers, so the request is the same HTTP/1.1 request wrk
// sends, and it is routed like every other request of the benchmark.
//
// Resumption: `s_time -reuse` makes one full handshake and then offers its session on every new
// connection; it prints `r` for each connection that resumed and `*` for each full handshake, so the
// row says both how fast resumed connections come and how many really resumed.

import { spawn, type ChildProcess } from 'node:child_process';
import { connect } from 'node:tls';
import { findCommand } from './processes.js';
import { UPSTREAM_BODY } from './servers.js';
import type { TlsTarget } from './targets.js';

export interface HandshakeOptions {
  /** s_time processes side by side. */
  readonly clients: number;
  readonly seconds: number;
  /** Offer the session of the first connection on every later one (`s_time -reuse`). */
  readonly resume?: boolean;
}

export interface HandshakeResult {
  readonly handshakes: number;
  /** Handshakes (each with one request) per wall-clock second. */
  readonly rate: number;
  readonly seconds: number;
  /** Connections whose answer was missing or short, and s_time processes that gave up. */
  readonly errors: number;
  readonly errorDetail: string;
  /** With `resume`: connections that resumed (the rest were full handshakes). */
  readonly resumed?: number;
}

export interface ProbeResult {
  /** e.g. "TLSv1.3 TLS_AES_256_GCM_SHA384 X25519". */
  readonly negotiated: string;
  readonly response: Buffer;
}

const running = new Set<ChildProcess>();

export function findOpenssl(): string | undefined {
  return findCommand('openssl');
}

/** Ends s_time processes still running (an interrupted bench). */
export function stopHandshakes(): void {
  for (const p of running) p.kill('SIGTERM');
}

/** What s_time sends: its own "GET %s HTTP/1.0\r\n\r\n" with the path below in place of %s. */
function sTimePath(host: string): string {
  return `/ HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\nX-Bench-Tail: x`;
}

export function sTimeRequest(host: string): string {
  return `GET ${sTimePath(host)} HTTP/1.0\r\n\r\n`;
}

/**
 * One connection as s_time makes it (no SNI, certificate not verified); with `request`, sends it and
 * reads until the server closes. Undefined when the handshake or the exchange fails.
 */
export function tlsProbe(port: number, request?: string, timeoutMs = 5000): Promise<ProbeResult | undefined> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let negotiated = '';
    const socket = connect({ host: '127.0.0.1', port, rejectUnauthorized: false, timeout: timeoutMs });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok ? { negotiated, response: Buffer.concat(chunks) } : undefined);
    };
    socket.once('secureConnect', () => {
      const key = socket.getEphemeralKeyInfo();
      const group = key && 'name' in key && key.name ? key.name : key && 'type' in key ? String(key.type) : '?';
      negotiated = `${socket.getProtocol()} ${socket.getCipher().standardName} ${group}`;
      if (request === undefined) return done(true);
      socket.write(request);
    });
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.once('end', () => done(true));
    socket.once('timeout', () => done(false));
    socket.once('error', () => done(false));
  });
}

/**
 * The exact request s_time will send, over one TLS connection: it must come back 200 with the
 * upstream's body. Returns what was negotiated and the answer's size, which s_time's byte count is
 * checked against.
 */
export async function handshakePreflight(t: TlsTarget): Promise<{ negotiated: string; answerBytes: number }> {
  const r = await tlsProbe(t.port, sTimeRequest(t.host));
  if (!r) throw new Error(`${t.name}: no TLS answer on port ${t.port}`);
  const text = r.response.toString('latin1');
  const status = /^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1];
  const body = text.slice(text.indexOf('\r\n\r\n') + 4);
  if (status !== '200' || body !== UPSTREAM_BODY) {
    throw new Error(`${t.name}: the handshake request got ${status ?? 'no status'}: ${text.slice(0, 300)}`);
  }
  return { negotiated: r.negotiated, answerBytes: r.response.length };
}

/** Runs `clients` s_time processes for `seconds` against `t` and adds up what they did. */
export async function runHandshakes(openssl: string, t: TlsTarget, opts: HandshakeOptions, answerBytes: number): Promise<HandshakeResult> {
  const seconds = Math.max(1, Math.round(opts.seconds));
  const args = ['s_time', '-connect', `127.0.0.1:${t.port}`, opts.resume ? '-reuse' : '-new', '-time', String(seconds), '-www', sTimePath(t.host)];
  const started = performance.now();
  const outcomes = await Promise.all(Array.from({ length: opts.clients }, () => sTime(openssl, args)));
  // s_time stops on a whole-second clock tick, so its own duration is rounded: time it here instead.
  const wall = (performance.now() - started) / 1000;
  let handshakes = 0;
  let bytes = 0;
  let resumed = 0;
  const failures: string[] = [];
  for (const o of outcomes) {
    const m = /(\d+) connections in [\d.]+s; [\d.]+ connections\/user sec, bytes read (\d+)/.exec(o.stdout);
    if (o.code !== 0 || !m) {
      failures.push((o.stderr || o.stdout).trim().split('\n').slice(-2).join(' ') || `exit ${o.code}`);
      continue;
    }
    handshakes += Number(m[1]);
    bytes += Number(m[2]);
    // The progress characters sit on their own lines before the summary.
    if (opts.resume) for (const line of o.stdout.split('\n')) if (/^[r*]+$/.test(line)) resumed += line.split('r').length - 1;
  }
  // A connection reset before the answer still counts as a connection for s_time: find those by the
  // bytes that are missing (answers vary by a few bytes, e.g. a Date header, hence the margin).
  const short = handshakes > 0 && bytes / handshakes < answerBytes * 0.98 ? Math.round(handshakes - bytes / answerBytes) : 0;
  const errors = short + failures.length;
  const detail = [
    short > 0 ? `${short} connections without a full answer (${(bytes / handshakes).toFixed(0)} of ${answerBytes} bytes on average)` : '',
    failures.length > 0 ? `${failures.length} s_time processes failed: ${failures[0]}` : '',
  ].filter(Boolean).join('; ');
  return { handshakes, rate: wall > 0 ? handshakes / wall : 0, seconds: wall, errors, errorDetail: detail, ...(opts.resume ? { resumed } : {}) };
}

function sTime(openssl: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(openssl, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    running.add(p);
    let stdout = '';
    let stderr = '';
    p.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    p.stderr.setEncoding('utf8').on('data', (s: string) => (stderr = (stderr + s).slice(-4000)));
    p.once('error', (err) => {
      running.delete(p);
      resolve({ code: -1, stdout, stderr: err.message });
    });
    p.once('close', (code) => {
      running.delete(p);
      resolve({ code, stdout, stderr });
    });
  });
}
