// http.maxRequestsPerConnection on an endpoint's pool, as Envoy counts it: N requests on a
// connection, then a new one. undici's own counter lets one request more through than it is told,
// and cannot say 1 at all; the locality failover task depends on 1 meaning one (a drained endpoint
// must be dialled again, and refuse).

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Dispatcher } from 'undici';
import { connectionLimits } from '../src/core/policy/connection-limits.js';
import { UpstreamPools } from '../src/core/proxy/upstream-pools.js';

/** Sends `n` requests one after another through a pool with `perConnection`; the connection (numbered as the server saw them) of each. */
async function connectionsFor(perConnection: number, n: number): Promise<number[]> {
  const sockets: Socket[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    if (!sockets.includes(req.socket)) sockets.push(req.socket);
    res.end(String(sockets.indexOf(req.socket)));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const pools = new UpstreamPools();
  const key = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  const limits = connectionLimits({ http: { maxRequestsPerConnection: perConnection } });
  const seen: number[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const lease = pools.acquire(key, undefined, limits);
      const body = await new Promise<string>((resolve, reject) => {
        let text = '';
        lease.pool.dispatch({ path: '/', method: 'GET', headers: { host: 'x' } }, {
          onConnect: () => undefined,
          onHeaders: () => true,
          onData: (chunk: Buffer) => ((text += chunk.toString()), true),
          onComplete: () => resolve(text),
          onError: reject,
        } as unknown as Dispatcher.DispatchHandler);
      });
      lease.end();
      seen.push(Number(body));
    }
  } finally {
    await pools.destroy();
    server.closeAllConnections();
    server.close();
  }
  return seen;
}

describe('maxRequestsPerConnection', () => {
  it('1: every request on a connection of its own', async () => {
    assert.deepEqual(await connectionsFor(1, 4), [0, 1, 2, 3]);
  });

  it('2: at most two requests per connection, then a new one', async () => {
    const seen = await connectionsFor(2, 6);
    const perConnection = [...new Set(seen)].map((c) => seen.filter((s) => s === c).length);
    // Which of the pool's connections takes a request is undici's to choose; none takes a third.
    assert.ok(perConnection.every((n) => n <= 2) && perConnection.includes(2), JSON.stringify(seen));
  });
});
