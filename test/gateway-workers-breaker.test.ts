// `meshgate gateway --workers 2` with a DestinationRule of maxConnections 1 and
// http1MaxPendingRequests 1: of 6 concurrent requests exactly 2 are served (one on the connection,
// one waiting for it) and 4 are answered 503 UO, as Istio does, whichever worker each lands on. The
// primary counts the slots for both workers, and every way a request ends gives its slot back:
// completion, the client going away (while it is served, and while it waits), an upstream reset.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { connect, type Socket } from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gatewayYaml, serviceYaml } from './helpers/cluster-yaml.js';
import { eventually } from './helpers/gateway.js';
import { startWorkersGateway, type WorkersGateway } from './helpers/gateway-workers.js';
import { freshGet } from './helpers/ports.js';
import { startUpstream, type Upstream } from './helpers/upstream.js';

const OVERFLOW_BODY = 'upstream connect error or disconnect/reset before headers. reset reason: overflow';
const HOST = 'limited.example.com';

describe('gateway --workers 2: connectionPool limits counted once for all workers', { timeout: 120_000 }, () => {
  let dir: string;
  let up: Upstream;
  let gw: WorkersGateway;
  let mode: 'answer' | 'hold' | 'reset' = 'answer';
  const held: ServerResponse[] = [];

  before(async () => {
    up = await startUpstream('limited', (req, res) => {
      if (mode === 'answer') return false;
      if (mode === 'reset') req.socket.destroy();
      else held.push(res);
      return true;
    });
    dir = await mkdtemp(join(tmpdir(), 'meshgate-workers-breaker-'));
    await writeFile(join(dir, 'gw.yaml'), gatewayYaml([HOST]));
    await writeFile(join(dir, 'svc.yaml'), serviceYaml('limited', [{ pod: 'limited-0', port: up.port }]));
    await writeFile(
      join(dir, 'rules.yaml'),
      `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: limited}
spec:
  host: limited
  trafficPolicy:
    connectionPool:
      tcp: {maxConnections: 1}
      http: {http1MaxPendingRequests: 1}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: limited}
spec:
  hosts: [${HOST}]
  gateways: [gw]
  http:
  - route: [{destination: {host: limited}}]
    timeout: 5s
    retries: {attempts: 0}
`,
    );
    gw = await startWorkersGateway(dir, 2);
  });

  after(async () => {
    gw?.kill();
    for (const res of held.splice(0)) res.end('done');
    await up.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** 6 concurrent requests on new connections (spread over both workers): exactly 2 served, 4 × 503 UO. */
  async function sixConcurrent(): Promise<void> {
    for (const res of held.splice(0)) res.end('left over');
    mode = 'hold';
    const results: { status: number; text: string }[] = [];
    const all = Array.from({ length: 6 }, (_, i) => freshGet(gw.port, HOST, `/burst/${i}`).then((r) => void results.push(r)));
    const overflowed = () => results.filter((r) => r.status === 503 && r.text === OVERFLOW_BODY).length;
    // One request at the upstream, one waiting for its connection, four turned away.
    await eventually(async () => held.length === 1 && overflowed() === 4, 20_000).catch(() =>
      assert.fail(`${held.length} at the upstream, ${overflowed()} overflowed (${results.map((r) => r.status).join(' ')}): not 1 + 1 of 6`),
    );
    mode = 'answer';
    // The waiting one gets the connection once the first is answered.
    held.shift()!.end('first');
    await eventually(async () => held.length === 1 || results.length === 6, 20_000);
    for (const res of held.splice(0)) res.end('second');
    await Promise.all(all);
    assert.equal(results.filter((r) => r.status === 200).length, 2, results.map((r) => r.status).join(' '));
    assert.equal(overflowed(), 4, results.map((r) => r.status).join(' '));
  }

  /** Both slots are free again: a request goes straight through (a leaked one would wait until 504). */
  async function slotsFree(): Promise<void> {
    mode = 'answer';
    await eventually(async () => (await freshGet(gw.port, HOST, '/probe')).status === 200, 20_000);
  }

  /** A request on a raw connection, so that the test can walk away from it. */
  function rawRequest(path: string): Socket {
    const s = connect(gw.port, '127.0.0.1');
    s.on('error', () => undefined);
    s.write(`GET ${path} HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`);
    return s;
  }

  it('serves exactly 2 of 6 concurrent requests and answers 4 with 503 UO, twice in a row (completion frees both slots)', async () => {
    await sixConcurrent();
    await slotsFree();
    await sixConcurrent();
  });

  it('frees the slots of clients that leave while served and while waiting', async () => {
    mode = 'hold';
    const served = rawRequest('/abort/served');
    await eventually(async () => held.length === 1, 20_000);
    const gone = new Promise<void>((r) => held[0]!.once('close', () => r()));
    const waiting = rawRequest('/abort/waiting');
    // The second request waits for the connection (or, if the test is quicker than the gateway, is
    // still on its way); either way, once both clients are gone, both slots must come back.
    await eventually(async () => waiting.bytesWritten > 0, 20_000);
    waiting.destroy();
    served.destroy();
    await gone;
    held.splice(0);
    await slotsFree();
    await sixConcurrent();
  });

  it('frees the slot of a request whose upstream resets', async () => {
    mode = 'reset';
    const statuses = await Promise.all(Array.from({ length: 3 }, (_, i) => freshGet(gw.port, HOST, `/reset/${i}`).then((r) => r.status)));
    assert.ok(statuses.every((s) => s === 503), statuses.join(' '));
    await slotsFree();
    await sixConcurrent();
  });
});
