// TLS session tickets (core/tls/session-tickets.ts) on a real node:tls server: a ticket resumes;
// after a rotation the previous key still resumes it (and the client gets a ticket under the new
// key); after a second rotation it no longer does; keys set from elsewhere (the `--workers` primary)
// take over at once; and servers with tickets off never resume.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer, type Server } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { issueCertificate } from '../src/core/tls/issue-certificate.js';
import { newTicketKey, SessionTickets } from '../src/core/tls/session-tickets.js';

const cert = issueCertificate({ subjectCN: 'tickets', dnsNames: ['tickets.example.com'], issuer: 'self', days: 1, keyType: 'ec' });

async function serve(tickets: SessionTickets): Promise<{ server: Server; port: number }> {
  const server = createServer({ cert: cert.certPem, key: cert.keyPem, ...tickets.contextOptions('unit') }, (s) => s.end('hi'));
  tickets.attach(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as AddressInfo).port };
}

/** One connection; resolves whether it resumed and the newest ticket the server sent. */
function hello(port: number, session?: Buffer, maxVersion: 'TLSv1.2' | 'TLSv1.3' = 'TLSv1.3'): Promise<{ reused: boolean; session: Buffer | undefined }> {
  return new Promise((resolve, reject) => {
    let reused = false;
    let latest: Buffer | undefined;
    const s = connect({ host: '127.0.0.1', port, ca: cert.certPem, servername: 'tickets.example.com', maxVersion, ...(session ? { session } : {}) });
    s.on('session', (b: Buffer) => (latest = b));
    s.once('secureConnect', () => (reused = s.isSessionReused()));
    s.on('data', () => undefined);
    s.once('end', () => resolve({ reused, session: latest }));
    s.once('error', reject);
  });
}

describe('session tickets', () => {
  const tickets = new SessionTickets();
  let server: Server;
  let port: number;
  before(async () => ({ server, port } = await serve(tickets)));
  after(() => server.close());

  for (const version of ['TLSv1.2', 'TLSv1.3'] as const) {
    it(`${version}: resumes, survives one rotation on the previous key, not two`, async () => {
      const first = await hello(port, undefined, version);
      assert.equal(first.reused, false);
      assert.ok(first.session);
      assert.equal((await hello(port, first.session, version)).reused, true);
      tickets.rotate();
      assert.equal((await hello(port, first.session, version)).reused, true, 'the previous key still decrypts');
      tickets.rotate();
      assert.equal((await hello(port, first.session, version)).reused, false, 'two rotations later the ticket is dead');
    });
  }

  it('a ticket renewed under the previous key resumes after the next rotation', async () => {
    const first = await hello(port);
    tickets.rotate();
    const renewed = await hello(port, first.session);
    assert.equal(renewed.reused, true);
    assert.ok(renewed.session);
    tickets.rotate();
    assert.equal((await hello(port, renewed.session)).reused, true);
  });

  it('keys from elsewhere take over; the same keys on another server resume its tickets', async () => {
    const keys = { current: newTicketKey() };
    tickets.setKeys(keys);
    const other = new SessionTickets({ keys });
    const second = await serve(other);
    try {
      const first = await hello(port);
      assert.equal((await hello(second.port, first.session)).reused, true);
    } finally {
      second.server.close();
    }
  });

  it('off: no ticket resumes', async () => {
    const off = await serve(new SessionTickets({ enabled: false }));
    try {
      const first = await hello(off.port);
      assert.equal((await hello(off.port, first.session)).reused, false);
    } finally {
      off.server.close();
    }
  });
});
