// An app's `CONNECT host:port` through a sidecar's outbound port (its HTTP proxy), on a raw socket:
// the status line the sidecar answers and, once tunnelled, what the far end sent back to `send`
// before the connection closed.

import { connect } from 'node:net';

export interface TunnelResult {
  /** The status of the answer to CONNECT (0 when the connection closed without one). */
  readonly status: number;
  /** The answer's body (a local reply), or what came through the tunnel. */
  readonly body: string;
}

/** Sends `send` through the tunnel once it is established and half-closes; resolves when the sidecar closes. */
export function tunnel(proxyPort: number, target: string, send = ''): Promise<TunnelResult> {
  return new Promise((resolve, reject) => {
    const s = connect(proxyPort, '127.0.0.1');
    let raw = '';
    let sent = false;
    s.once('connect', () => s.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`));
    s.on('data', (d: Buffer) => {
      raw += d.toString('latin1');
      const end = raw.indexOf('\r\n\r\n');
      if (!sent && end >= 0 && /^HTTP\/1\.1 200 /.test(raw)) {
        sent = true;
        s.end(send);
      }
    });
    s.once('close', () => {
      const end = raw.indexOf('\r\n\r\n');
      const status = Number(/^HTTP\/1\.1 (\d{3}) /.exec(raw)?.[1] ?? 0);
      resolve({ status, body: end >= 0 ? raw.slice(end + 4) : '' });
    });
    s.once('error', reject);
  });
}
