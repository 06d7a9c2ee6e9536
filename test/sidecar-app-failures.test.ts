// Integration: how a sidecar's inbound side answers when its own app fails before answering, as
// Envoy's inbound cluster does: an app that drops the connection is 503 UC (connection termination),
// an app port nothing listens on 503 UF (connection failure). Both read as the latter before.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { FileSource } from '../src/core/sources/file-source.js';
import { startSidecar, type RunningSidecar } from '../src/sidecar/main.js';
import { fixedIdentity, testAuthority } from './helpers/mesh.js';
import { closedPort } from './helpers/upstream.js';
import { accessLogLine, send } from './helpers/gateway.js';

describe('a sidecar whose app fails before answering', () => {
  let dir: string;
  let dropping: Server;
  const sidecars: RunningSidecar[] = [];

  /** A sidecar in front of the app on `appPort`, plaintext (PERMISSIVE), logging to `log`. */
  async function sidecarFor(appPort: number, log: string): Promise<RunningSidecar> {
    const ca = await testAuthority();
    const s = await startSidecar({
      statusPort: 0,
      adminPort: 0,
      outboundPort: 0,
      inboundPort: 0,
      listenHost: '127.0.0.1',
      accessLog: log,
      logger: pino({ level: 'silent' }),
      namespace: 'default',
      identity: fixedIdentity(ca, 'default', 'app'),
      source: new FileSource({ dir }),
      serviceAccount: 'app',
      labels: { app: 'app' },
      appPort,
    });
    sidecars.push(s);
    return s;
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'meshgate-app-failures-'));
    // Reads the request, then drops the connection without a word.
    dropping = createServer((s: Socket) => {
      s.on('error', () => undefined);
      s.on('data', (d: Buffer) => {
        if (d.includes('\r\n\r\n')) s.destroy();
      });
    });
    await new Promise<void>((r) => dropping.listen(0, '127.0.0.1', r));
  });

  after(async () => {
    for (const s of sidecars) await s.destroy();
    dropping?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('an app that drops the connection: 503 UC, connection termination', async () => {
    const log = join(dir, 'dropping.log');
    const s = await sidecarFor((dropping.address() as AddressInfo).port, log);
    const r = await send(s.inboundPort, 'app.default.svc.cluster.local', '/', { 'x-request-id': 'dropped' });
    assert.equal(r.status, 503);
    assert.match(r.text, /reset reason: connection termination$/);
    assert.equal((await accessLogLine(log, 'dropped')).response_flags, 'UC');
  });

  it('an app port nothing listens on: 503 UF, connection failure', async () => {
    const log = join(dir, 'closed.log');
    const s = await sidecarFor(await closedPort(), log);
    const r = await send(s.inboundPort, 'app.default.svc.cluster.local', '/', { 'x-request-id': 'refused' });
    assert.equal(r.status, 503);
    // Envoy's body and details name the kernel's answer (ECONNREFUSED, 111).
    assert.match(r.text, /reset reason: connection failure, transport failure reason: delayed connect error: 111$/);
    const line = await accessLogLine(log, 'refused');
    assert.equal(line.response_flags, 'UF');
    assert.equal(line.response_code_details, 'upstream_reset_before_response_started{connection_failure,delayed_connect_error:_111}');
    assert.equal(line.upstream_transport_failure_reason, 'delayed connect error: 111');
  });
});
