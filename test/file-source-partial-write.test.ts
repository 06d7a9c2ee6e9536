// Regression: a config file read while it is being written (truncated, then written again) must not
// be applied as "everything removed". A request loop runs while a routes file is truncated and
// rewritten, and never sees a 404; a file emptied on purpose still applies once it has stayed empty,
// with a warning that names it.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileSource } from '../src/core/sources/file-source.js';
import type { ConfigUpdate } from '../src/core/sources/source.js';
import { serviceYaml } from './helpers/cluster-yaml.js';
import { eventually, send, startTestGateway, type TestGateway } from './helpers/gateway.js';
import { startUpstream, type Upstream } from './helpers/upstream.js';

const HOST = 'files.example.com';
/** How long the simulated writer pauses mid-write: long enough for the folder to be read meanwhile (debounce 100 ms) on a loaded machine. */
const WRITER_PAUSE_MS = 600;

const GATEWAY = `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: [${HOST}]
`;

const routes = (marker: string): string => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: app, namespace: default}
spec:
  hosts: [${HOST}]
  gateways: [gw]
  http:
  - match: [{uri: {exact: /marker}}]
    directResponse: {status: 200, body: {string: ${marker}}}
  - route: [{destination: {host: app}}]
`;

describe('config files caught half-written', () => {
  let app: Upstream;
  let gw: TestGateway;

  before(async () => {
    app = await startUpstream('app');
    gw = await startTestGateway({
      // One file holds the Gateway and the routes: cut short, it parses to fewer documents.
      'edge.yaml': `${GATEWAY}---\n${routes('v1')}`,
      'app.yaml': serviceYaml('app', [{ pod: 'app-1', port: app.port }]),
    });
  });

  after(async () => {
    await gw?.close();
    await app?.close();
  });

  /** Requests /stable one after another until `stop()`; the statuses seen. */
  function requestLoop(): { stop(): Promise<number[]> } {
    const statuses: number[] = [];
    let running = true;
    const loop = (async () => {
      while (running) statuses.push((await send(gw.port, HOST, '/stable', { connection: 'close' })).status);
    })();
    return {
      stop: async () => {
        running = false;
        await loop;
        return statuses;
      },
    };
  }

  const marker = async (want: string): Promise<boolean> => (await send(gw.port, HOST, '/marker')).text === want;

  it('a file truncated and then rewritten is never applied as empty: no 404 under a request loop', async () => {
    const file = join(gw.dir, 'edge.yaml');
    const loop = requestLoop();
    await eventually(async () => (await send(gw.port, HOST, '/stable')).status === 200);
    await writeFile(file, '');
    // A writer that pauses between truncating and writing: the watcher reads the file meanwhile.
    await new Promise((r) => setTimeout(r, WRITER_PAUSE_MS));
    await writeFile(file, `${GATEWAY}---\n${routes('v2')}`);
    await eventually(() => marker('v2'));
    const statuses = await loop.stop();
    assert.ok(statuses.length > 0);
    assert.deepEqual(
      statuses.filter((s) => s !== 200),
      [],
    );
  });

  it('a file cut to fewer documents and completed is never applied cut', async () => {
    const file = join(gw.dir, 'edge.yaml');
    const loop = requestLoop();
    await writeFile(file, GATEWAY);
    // The writer pauses with only the first document written.
    await new Promise((r) => setTimeout(r, WRITER_PAUSE_MS));
    await writeFile(file, `${GATEWAY}---\n${routes('v3')}`);
    await eventually(() => marker('v3'));
    const statuses = await loop.stop();
    assert.deepEqual(
      statuses.filter((s) => s !== 200),
      [],
    );
  });
});

describe('a file emptied on purpose', () => {
  let dir: string;
  let source: FileSource;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'meshgate-partial-'));
  });

  after(async () => {
    await source?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('applies once it has stayed empty, with a warning naming the file', async () => {
    await writeFile(join(dir, 'routes.yaml'), `${GATEWAY}---\n${routes('v1')}`);
    source = new FileSource({ dir, debounceMs: 20, settleMs: 300 });
    const updates: ConfigUpdate[] = [];
    let next: (() => void) | undefined;
    await source.start((u) => {
      updates.push(u);
      next?.();
    });
    assert.equal(updates[0]?.resources.length, 2);
    const emptied = new Promise<void>((r) => (next = r));
    await writeFile(join(dir, 'routes.yaml'), '');
    await emptied;
    const last = updates.at(-1)!;
    assert.equal(last.resources.length, 0);
    const warning = last.problems.find((p) => p.severity === 'warning' && p.file.endsWith('routes.yaml'));
    assert.match(warning?.message ?? '', /had 2 resource\(s\) and now has 0.*removes every resource/);
  });
});
