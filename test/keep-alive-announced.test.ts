// HTTP/1 keep-alive on every listener: a response says how long its connection may sit idle
// (`Keep-Alive: timeout=`), on plaintext and TLS alike, and never longer than the idle timeout that
// closes it. A client that reads it — undici, so a meshgate gateway in front of a sidecar — keeps
// its idle connections that long, instead of dropping them after its own few seconds and paying a
// new (m)TLS handshake at the next burst.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { DEFAULT_HTTP_LIMITS } from '../src/core/proxy/http-limits.js';
import { startUpstream, type Upstream } from './helpers/upstream.js';
import { openSocket, type TlsClient } from './helpers/raw-http.js';
import { HOST, startTargetGateway, type TargetGateway } from './helpers/target-config.js';

/** One kept-alive HTTP/1.1 request; the response head, read up to the app's echoed path. */
async function keptAliveHead(port: number, tls?: TlsClient): Promise<string> {
  const s: Socket = await openSocket(port, tls);
  try {
    return await new Promise<string>((resolve, reject) => {
      let text = '';
      s.on('data', (d: Buffer) => {
        text += d.toString('latin1');
        if (text.includes('"url":"/ka"')) resolve(text.slice(0, text.indexOf('\r\n\r\n')));
      });
      s.once('close', () => reject(new Error(`closed before the answer: ${JSON.stringify(text)}`)));
      s.write(`GET /ka HTTP/1.1\r\nhost: ${HOST}\r\n\r\n`);
    });
  } finally {
    s.destroy();
  }
}

function keepAliveOf(head: string): string | undefined {
  return /^keep-alive: *(.*)$/im.exec(head)?.[1]?.trim();
}

describe('HTTP/1 keep-alive announced on every listener', () => {
  let app: Upstream;
  const gateways: TargetGateway[] = [];

  before(async () => {
    app = await startUpstream('app');
  });

  after(async () => {
    for (const g of gateways) await g.close();
    await app?.close();
  });

  it('plaintext and TLS alike announce 60 s', async () => {
    const g = await startTargetGateway(app.port);
    gateways.push(g);
    const plain = await keptAliveHead(g.plain);
    const tls = await keptAliveHead(g.tlsPort, g.tls);
    assert.match(plain, /^HTTP\/1\.1 200 /);
    assert.match(tls, /^HTTP\/1\.1 200 /);
    assert.equal(keepAliveOf(plain), 'timeout=60', plain);
    assert.equal(keepAliveOf(tls), 'timeout=60', tls);
  });

  it('never announces longer than the idle timeout', async () => {
    const g = await startTargetGateway(app.port, { ...DEFAULT_HTTP_LIMITS, idleTimeoutMs: 30_000 });
    gateways.push(g);
    assert.equal(keepAliveOf(await keptAliveHead(g.plain)), 'timeout=30');
    assert.equal(keepAliveOf(await keptAliveHead(g.tlsPort, g.tls)), 'timeout=30');
  });
});
