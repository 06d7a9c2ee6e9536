// Matching a host name (SNI or Host header) against a Gateway server's hosts: exact, then the
// longest wildcard, then `*` — the order Envoy uses to pick a filter chain by SNI.

import type { Listener, ServerConfig } from './types.js';

/** HTTPS and TLS servers: on a listener with any of them, the ClientHello's SNI picks the server. */
export function isTlsServer(s: ServerConfig): boolean {
  return s.protocol === 'HTTPS' || s.protocol === 'TLS';
}

export function hostCovered(hosts: readonly string[], host: string): boolean {
  return specificity(hosts, host) > 0;
}

/** 0: not covered; `*`: 1; a wildcard: 2 + suffix length; exact: max. */
function specificity(hosts: readonly string[], host: string): number {
  let best = 0;
  for (const h of hosts) {
    if (h === host) return Number.MAX_SAFE_INTEGER;
    if (h === '*') best = Math.max(best, 1);
    else if (h.startsWith('*') && host.length > h.length - 1 && host.endsWith(h.slice(1))) best = Math.max(best, 2 + h.length);
  }
  return best;
}

/** The server whose hosts match the SNI best; without SNI only a `*` server can take the connection. */
export function serverForSni(servers: readonly ServerConfig[], sni: string | undefined): ServerConfig | undefined {
  let best: ServerConfig | undefined;
  let bestScore = 0;
  for (const s of servers) {
    const score = sni === undefined ? (s.hosts.includes('*') ? 1 : 0) : specificity(s.hosts, sni);
    if (score > bestScore) {
      best = s;
      bestScore = score;
    }
  }
  return best;
}

interface Candidate {
  readonly listenPort: number;
  readonly server: ServerConfig;
  readonly score: number;
}

/**
 * The TLS server a client asking for `host` over TLS would reach on any listener, with its listen
 * port: the best match by the SNI rules; between equal matches Gateway port 443, then the lower
 * listen port. Where httpsRedirect sends a plaintext client.
 */
export function tlsServerFor(listeners: ReadonlyMap<number, Listener>, host: string): Omit<Candidate, 'score'> | undefined {
  let best: Candidate | undefined;
  for (const [listenPort, l] of listeners) {
    for (const server of l.servers) {
      const score = isTlsServer(server) ? specificity(server.hosts, host) : 0;
      const c = { listenPort, server, score };
      if (score > 0 && (!best || beats(c, best))) best = c;
    }
  }
  return best && { listenPort: best.listenPort, server: best.server };
}

function beats(a: Candidate, b: Candidate): boolean {
  if (a.score !== b.score) return a.score > b.score;
  if ((a.server.port === 443) !== (b.server.port === 443)) return a.server.port === 443;
  return a.listenPort < b.listenPort;
}
