// forward()'s ending contract: `done` is called once, and whatever a step throws reaches it as a
// bug to answer (act.ts answers it 503), even a value that is not an Error. A bug told as
// `undefined` would read as "the upstream answered" and leave the client waiting for ever. An
// attempt that throws gives back what it held (its pool lease, its per-try timer) all the same.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { forward, type ForwardContext } from '../src/core/proxy/forward.js';
import type { ForwardAction, RequestFacts } from '../src/core/routing/types.js';
import type { RequestRecord } from '../src/core/telemetry/access-log.js';
import { UpstreamPools } from '../src/core/proxy/upstream-pools.js';

function get(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    request({ port, path: '/x' }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    })
      .on('error', reject)
      .end();
  });
}

describe('forward(): a step that throws', () => {
  for (const thrown of [undefined, null]) {
    it(`throwing ${String(thrown)} still ends the request as a bug`, { timeout: 20_000 }, async (t) => {
      const cluster = { endpoints: [{}], port: { protocol: 'HTTP' } };
      const dest = { cluster, weight: 1 };
      const action = {
        kind: 'forward',
        destinations: [dest],
        totalWeight: 1,
        rewritePath: () => {
          throw thrown;
        },
        requestHeaders: {},
        responseHeaders: {},
        timeoutMs: 0,
        retry: { attempts: 0, perTryTimeoutMs: 0, on: new Set(), statusCodes: new Set(), grpcStatuses: new Set(), backoffBaseMs: 25, avoidPreviousHosts: true },
        mirrors: [],
      } as unknown as ForwardAction;
      const facts = { path: '/x', queryString: '', query: {}, scheme: 'http', authority: 'a' } as unknown as RequestFacts;
      const calls: unknown[][] = [];
      const server: Server = createServer((req, res) => {
        const ctx = { pools: undefined, random: Math.random, remoteAddress: '127.0.0.1', requestId: 'r', destination: dest } as unknown as ForwardContext;
        forward(req, res, facts, action, ctx, {} as RequestRecord, (failure, bug) => {
          calls.push([failure, bug]);
          // As act.ts answers: a bug is a 503, a failure its reply, nothing when the upstream answered.
          if (bug !== undefined) res.writeHead(503).end((bug as Error).message);
          else if (failure) res.writeHead(failure.status).end();
        });
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      // Closed after the test even when it times out on a request that never ends.
      t.after(() => {
        server.closeAllConnections();
        server.close();
      });
      assert.equal(await get((server.address() as AddressInfo).port), 503);
      assert.equal(calls.length, 1);
    });
  }
});

describe('forward(): an attempt that fails by throwing', () => {
  it('gives back its pool lease (the least-request count) and is answered as a bug', { timeout: 20_000 }, async (t) => {
    const pools = new UpstreamPools();
    const key = UpstreamPools.key('127.0.0.1', 50051);
    // The real pools, except that opening the HTTP/2 stream throws (as it does once they are closed):
    // the attempt's promise rejects instead of telling an outcome.
    const failing = {
      acquire: pools.acquire.bind(pools),
      h2Request: () => {
        throw new Error('upstream pools are closed');
      },
    };
    const endpoint = { address: '127.0.0.1', ports: new Map([[50051, 50051]]), namespace: 'default', labels: {} };
    const cluster = { name: 'grpc', endpoints: [endpoint], port: { number: 50051, protocol: 'GRPC' }, policy: {}, lb: { pick: () => ({ endpoint }) } };
    const noRules = { set: [], add: [], remove: [] };
    const dest = { cluster, weight: 1, requestHeaders: noRules, responseHeaders: noRules };
    const action = {
      kind: 'forward',
      destinations: [dest],
      totalWeight: 1,
      requestHeaders: noRules,
      responseHeaders: noRules,
      timeoutMs: 0,
      retry: { attempts: 0, perTryTimeoutMs: 60_000, on: new Set(), statusCodes: new Set(), grpcStatuses: new Set(), backoffBaseMs: 25, avoidPreviousHosts: true },
      mirrors: [],
    } as unknown as ForwardAction;
    const facts = { path: '/x', queryString: '', query: {}, scheme: 'http', authority: 'a' } as unknown as RequestFacts;
    const bugs: string[] = [];
    const server: Server = createServer((req, res) => {
      const ctx = { pools: failing, random: Math.random, remoteAddress: '127.0.0.1', requestId: 'r', destination: dest } as unknown as ForwardContext;
      forward(req, res, facts, action, ctx, {} as RequestRecord, (failure, bug) => {
        if (bug !== undefined) bugs.push((bug as Error).message);
        res.writeHead(bug !== undefined ? 503 : (failure?.status ?? 200)).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    t.after(async () => {
      server.closeAllConnections();
      server.close();
      await pools.destroy();
    });
    assert.equal(await get((server.address() as AddressInfo).port), 503);
    assert.deepEqual(bugs, ['upstream pools are closed'], 'the attempt itself threw');
    assert.equal(pools.active(key), 0, 'the endpoint no longer counts a request in flight');
  });
});
