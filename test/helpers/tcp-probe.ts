// Probes for TCP authorization tests: an app that serves HTTP and echoes anything else, and clients
// that connect plainly or over TLS and tell an echoed `ping` from a closed connection.

import { connect as netConnect, createServer as createNetServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';

/** Answers an HTTP request line with 200 `ok`, echoes anything else (an app that serves both). */
export function startApp(): Promise<{ server: Server; port: number; received: () => number }> {
  let received = 0;
  const server = createNetServer((s) => {
    s.on('error', () => s.destroy());
    s.once('data', (first: Buffer) => {
      received += first.length;
      if (/^[A-Z]+ \//.test(first.toString('latin1', 0, 16))) return void s.end('HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok');
      s.write(first);
      s.on('data', (b: Buffer) => {
        received += b.length;
        s.write(b);
      });
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, port: (server.address() as AddressInfo).port, received: () => received })));
}

/** Sends `ping` on an open connection: the echo, or null when the connection is closed instead. */
export function ping(s: Socket): Promise<string | null> {
  return new Promise((resolve) => {
    let text = '';
    s.on('data', (b: Buffer) => {
      text += b.toString();
      if (text === 'ping') {
        resolve(text);
        s.destroy();
      }
    });
    s.on('error', () => undefined);
    s.once('close', () => resolve(text === '' ? null : text));
    s.write('ping');
  });
}

export function plain(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = netConnect(port, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });
}

export interface Cert {
  readonly certChainPem: string;
  readonly keyPem: string;
}

export function tls(port: number, ca: string, alpn: string[], cert?: Cert): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ port, host: '127.0.0.1', ca, servername: 'app', ALPNProtocols: alpn, ...(cert ? { cert: cert.certChainPem, key: cert.keyPem } : {}), rejectUnauthorized: false }, () => resolve(s));
    s.once('error', reject);
  });
}
