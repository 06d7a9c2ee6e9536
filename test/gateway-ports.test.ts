// Integration: how Gateway server ports become listening ports (docs/reference/routing.md). `--ports` is the
// gateway Service (port=targetPort); a server port it does not map is listened on as-is, and servers
// whose ports end up on one listen port share that listener, each keeping its own `match.port`. A
// port that cannot be opened is logged with its servers while every other port keeps serving.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import { serviceYaml } from './helpers/cluster-yaml.js';
import { eventually, send, startTestGateway, type TestGateway } from './helpers/gateway.js';
import { freshGet } from './helpers/ports.js';
import { startUpstream, type Upstream } from './helpers/upstream.js';
import type { GatewayOptions } from '../src/gateway/main.js';

interface LogLine {
  level: number;
  msg: string;
  port?: number;
  servers?: string[];
}

/**
 * A port free when looked at. Only these tests hand one on: what they test is a Gateway server port
 * number listened on as-is, which the YAML must name before the gateway starts, so the OS cannot
 * choose it. Everything else binds port 0 and reads the port back.
 */
async function unmappedPortNumber(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

/** A logger whose lines the test can read. */
function capturedLogger(): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString('utf8').split('\n')) if (l) lines.push(JSON.parse(l) as LogLine);
      done();
    },
  });
  return { logger: pino({ level: 'info' }, stream), lines };
}

/** Servers: `[port, host]` pairs, each its own HTTP server of Gateway `gw`. */
function gateway(servers: ReadonlyArray<readonly [number, string]>): string {
  const list = servers.map(([port, host], i) => `  - port: {number: ${port}, name: http-${i}, protocol: HTTP}\n    hosts: [${host}]`).join('\n');
  return `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers:
${list}
`;
}

function virtualService(hosts: readonly string[], http: string): string {
  return `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: web, namespace: default}
spec:
  hosts: ${JSON.stringify(hosts)}
  gateways: [gw]
  http:
${http}
`;
}

describe('Gateway server ports and listeners', () => {
  let eighty: Upstream;
  let other: Upstream;

  before(async () => {
    eighty = await startUpstream('eighty');
    other = await startUpstream('other');
  });
  after(async () => {
    await eighty.close();
    await other.close();
  });

  /** Gateway servers on 80 (a.example.com) and on `port` (b.example.com); a VirtualService for both with `http`. */
  const twoServers = (port: number, http: string, options: Partial<GatewayOptions>): Promise<TestGateway> =>
    startTestGateway(
      {
        'gw.yaml': gateway([
          [80, 'a.example.com'],
          [port, 'b.example.com'],
        ]),
        'vs.yaml': virtualService(['a.example.com', 'b.example.com'], http),
        'svc.yaml': serviceYaml('eighty', [{ pod: 'eighty-1', port: eighty.port }]) + '---\n' + serviceYaml('other', [{ pod: 'other-1', port: other.port }]),
      },
      { gateway: options },
    );

  it('listens on a server port that --ports does not map, as-is, and says so once', async () => {
    const n = await unmappedPortNumber();
    const { logger, lines } = capturedLogger();
    const gw = await twoServers(n, '  - route: [{destination: {host: eighty}}]', { logger });
    try {
      assert.equal(gw.gw.listenPorts.get(n), n);
      assert.equal((await send(n, 'b.example.com', '/')).status, 200);
      assert.equal((await send(gw.port, 'b.example.com', '/')).status, 404, 'b is served on its own port, not on the one of port 80');
      assert.equal((await send(gw.port, 'a.example.com', '/')).status, 200);
      const said = lines.filter((l) => l.msg.includes(`Gateway port ${n} is not in --ports`));
      assert.equal(said.length, 1, JSON.stringify(lines.map((l) => l.msg)));
      assert.equal(said[0]!.level, 30);
      assert.match(said[0]!.msg, new RegExp(`add ${n}=LISTEN_PORT to --ports`));
      assert.deepEqual(said[0]!.servers, ['default/gw server[1] (http-1)']);
    } finally {
      await gw.close();
    }
  });

  it('--ports 80=N: servers on 80 and on N share listener N, and match.port keeps each server its own routes', async () => {
    const n = await unmappedPortNumber();
    const { logger, lines } = capturedLogger();
    const routes = `  - match: [{port: 80}]\n    route: [{destination: {host: eighty}}]\n  - match: [{port: ${n}}]\n    route: [{destination: {host: other}}]`;
    const gw = await twoServers(n, routes, { ports: new Map([[80, n]]), logger });
    try {
      assert.equal(gw.port, n);
      assert.equal(gw.gw.listenPorts.get(n), n);
      const a = await send(n, 'a.example.com', '/');
      const b = await send(n, 'b.example.com', '/');
      assert.equal(a.json().name, 'eighty', 'the port-80 server has only the match.port 80 route');
      assert.equal(b.json().name, 'other', `the port-${n} server has only the match.port ${n} route`);
      assert.equal(lines.filter((l) => l.msg.includes('is not in --ports')).length, 0, 'nothing is listened on as-is');
    } finally {
      await gw.close();
    }
  });

  it('logs a server port that cannot be opened with its server, keeps serving the others, and opens it with a later configuration', async () => {
    // The blocker holds its port from the start (port 0): no window in which another test could take it.
    const blocker: Server = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const blocked = (blocker.address() as AddressInfo).port;
    const { logger, lines } = capturedLogger();
    const gw: TestGateway = await twoServers(blocked, '  - route: [{destination: {host: eighty}}]', { logger });
    try {
      const errors = lines.filter((l) => l.level === 50);
      assert.equal(errors.length, 1, JSON.stringify(lines.map((l) => l.msg)));
      assert.match(errors[0]!.msg, new RegExp(`default/gw server\\[1\\] \\(http-1\\) on port ${blocked}: cannot listen on 127\\.0\\.0\\.1:${blocked}: the address is already in use`));
      assert.equal((await send(gw.port, 'a.example.com', '/')).status, 200);
      assert.equal(gw.gw.listenPorts.has(blocked), false);

      await new Promise((r) => blocker.close(r));
      await gw.write('vs.yaml', virtualService(['a.example.com', 'b.example.com'], '  - route: [{destination: {host: other}}]'));
      await eventually(async () => (await send(blocked, 'b.example.com', '/').catch(() => undefined))?.json().name === 'other');

      // A configuration without that server closes its port again.
      await gw.write('gw.yaml', gateway([[80, 'a.example.com']]));
      await eventually(async () => (await freshGet(blocked, 'b.example.com', '/').then(() => false, () => true)));
      assert.equal((await send(gw.port, 'a.example.com', '/')).json().name, 'other');
    } finally {
      blocker.close();
      await gw.close();
    }
  });
});
