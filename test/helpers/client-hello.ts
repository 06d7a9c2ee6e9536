// A real ClientHello, as bytes: what a Node TLS client sends first, for tests that feed it to a
// proxy that peeks at it (SNI, ALPN) without finishing a handshake.

import { createServer, type AddressInfo } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';

/** The first TLS record(s) a Node TLS client sends, read by a plain TCP server. */
export async function captureHello(opts: ConnectionOptions): Promise<Buffer> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  try {
    const got = new Promise<Buffer>((resolve) => {
      server.once('connection', (sock) => {
        let buf = Buffer.alloc(0);
        sock.on('data', (c: Buffer) => {
          buf = Buffer.concat([buf, c]);
          // Node sends the hello in one record: wait for exactly that record.
          if (buf.length >= 5 && buf.length >= 5 + buf.readUInt16BE(3)) {
            resolve(buf);
            sock.destroy();
          }
        });
      });
    });
    const client = tlsConnect({ host: '127.0.0.1', port, ...opts });
    client.on('error', () => {});
    const hello = await got;
    client.destroy();
    return hello;
  } finally {
    server.close();
  }
}

