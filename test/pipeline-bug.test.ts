// The request pipeline's answer to a stage that throws (a bug): 503 through respond.ts, the access
// log saying what failed, an error line in the proxy's log, and the proxy serving on — the same
// keep-alive connection included. A throw on the pipeline's first, synchronous pass reached the
// server's 'request' event, which ended the process; a rejection with null crashed the handler.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { handleHttpRequest, type HttpHandlerContext, type ListenerInfo } from '../src/core/proxy/http-handler.js';
import { DONE, type Stage } from '../src/core/proxy/stages/exchange.js';
import { SnapshotHolder } from '../src/core/snapshot/holder.js';
import { UpstreamPools } from '../src/core/proxy/upstream-pools.js';
import { ConnectionDrain } from '../src/core/proxy/drain.js';
import type { RequestRecord } from '../src/core/telemetry/access-log.js';
import { Http1Connection } from './helpers/raw-clients.js';

describe('a pipeline stage that throws', () => {
  const records: RequestRecord[] = [];
  const logged: Array<Record<string, unknown>> = [];
  const pools = new UpstreamPools();
  let server: Server;
  let port: number;

  before(async () => {
    // Stands in for a stage with a bug: what it throws depends on the path.
    const buggy: Stage = (ex) => {
      if (ex.req.url === '/throws') throw new TypeError('stage broke');
      if (ex.req.url === '/rejects-null') return Promise.reject(null);
      ex.res.writeHead(200, { 'content-length': '2' }).end('ok');
      return DONE;
    };
    const ctx: HttpHandlerContext = {
      holder: new SnapshotHolder(),
      pools,
      accessLog: { write: (r) => records.push({ ...r }), flush: () => undefined },
      random: Math.random,
      drain: new ConnectionDrain(),
      log: pino({ level: 'error' }, { write: (line: string) => void logged.push(JSON.parse(line) as Record<string, unknown>) }),
    };
    const listener: ListenerInfo = { port: 80, scheme: 'http', select: () => undefined, stages: [buggy] };
    server = createServer((req, res) => handleHttpRequest(req, res, listener, ctx));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });

  after(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    await pools.destroy();
  });

  for (const path of ['/throws', '/rejects-null']) {
    it(`${path}: answered 503 and logged as an internal error; the connection serves on`, { timeout: 20_000 }, async () => {
      const c = await Http1Connection.open(port);
      try {
        const r = await c.get('bug.example.com', path);
        assert.equal(r.status, 503);
        assert.equal(r.headers.server, 'istio-envoy');
        assert.equal((await c.get('bug.example.com', '/fine')).status, 200, 'the same connection answers the next request');
      } finally {
        c.close();
      }
      const record = records.find((x) => x.path === path);
      assert.ok(record, 'the request has its access-log record');
      assert.match(String(record.details), /^internal_error:/);
      assert.ok(logged.some((l) => l.path === path && l.msg === 'request handling failed'), 'an error line names the request');
    });
  }
});
