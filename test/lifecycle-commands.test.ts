// `meshgate wait` as the kubelet runs it in a postStart hook: a real process asking a readiness URL
// until it answers 200 (exit 0), or giving up after its timeout (exit 1). And `meshgate request`'s
// refusals (what it asks for real is the sidecar's fixed ports, which tests do not bind).

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { exited, meshgate } from './helpers/processes.js';

describe('meshgate wait', () => {
  let server: Server;
  let port = 0;
  const asked: string[] = [];
  /** How many more answers are 503 before the sidecar is "ready"; -1 = never ready. */
  let notReadyFor = 0;

  before(async () => {
    server = createServer((req, res) => {
      asked.push(req.url ?? '');
      if (notReadyFor === 0) return void res.writeHead(200).end();
      if (notReadyFor > 0) notReadyFor--;
      res.writeHead(503).end('not ready');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as { port: number }).port;
  });
  after(() => server.close());

  it('asks until the answer is 200, then exits 0', async () => {
    asked.length = 0;
    notReadyFor = 3;
    const proc = meshgate(['wait', '--url', `http://127.0.0.1:${port}/healthz/ready`, '--period-millis', '20', '--timeout-seconds', '120']);
    assert.equal(await exited(proc), 0, proc.log());
    assert.deepEqual(asked, Array(4).fill('/healthz/ready'));
    assert.match(proc.log(), /the sidecar is ready/);
  });

  it('gives up after the timeout with exit 1 and says what the last attempt got', async () => {
    notReadyFor = -1;
    const proc = meshgate(['wait', '--url', `http://127.0.0.1:${port}/healthz/ready`, '--period-millis', '50', '--timeout-seconds', '0.3']);
    assert.equal(await exited(proc), 1, proc.log());
    assert.match(proc.log(), /timed out waiting for the sidecar to be ready; last attempt: HTTP status 503/);
  });

  it("refuses a URL it cannot ask and a flag that is not a number (exit 2)", async () => {
    const bad = meshgate(['wait', '--url', 'https://localhost:15021/healthz/ready']);
    assert.equal(await exited(bad), 2);
    const nan = meshgate(['wait', '--timeout-seconds', 'soon']);
    assert.equal(await exited(nan), 2);
  });
});

describe('meshgate request', () => {
  it('asks only the sidecar\'s own ports, and needs a method and a path (exit 2 otherwise)', async () => {
    for (const args of [['--debug-port', '8080', 'POST', 'drain'], ['POST'], ['post', 'drain'], ['POST', 'drain', 'extra']]) {
      const proc = meshgate(['request', ...args]);
      assert.equal(await exited(proc), 2, `${args.join(' ')}: ${proc.log()}`);
    }
  });
});
