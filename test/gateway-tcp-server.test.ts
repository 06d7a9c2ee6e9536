// Integration: a plain TCP Gateway server pipes bytes to its tcp route's upstream.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { startGateway } from '../src/gateway/main.js';
import { tcpGatewayYaml } from './helpers/cluster-yaml.js';

describe('TCP servers', () => {
  it('pipes a plain TCP Gateway port to its tcp route', async () => {
    const { createServer } = await import('node:net');
    const echo = createServer((s) => s.pipe(s));
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
    const echoPort = (echo.address() as { port: number }).port;
    const dir = await mkdtemp(join(tmpdir(), 'meshgate-tcp-'));
    await writeFile(
      join(dir, 'all.yaml'),
      tcpGatewayYaml(echoPort),
    );
    const gw = await startGateway({ configDir: dir, certsDir: join(dir, 'certs'), ports: new Map([[5432, 0]]), listenHost: '127.0.0.1', statusPort: 0, adminPort: 0, accessLog: 'off', logger: pino({ level: 'silent' }) });
    try {
      const { connect } = await import('node:net');
      const got = await new Promise<string>((resolve, reject) => {
        const c = connect(gw.listenPorts.get(5432)!, '127.0.0.1', () => c.end('ping over tcp'));
        let text = '';
        c.setEncoding('utf8');
        c.on('data', (d: string) => (text += d));
        c.on('end', () => resolve(text));
        c.on('error', reject);
      });
      assert.equal(got, 'ping over tcp');
    } finally {
      await gw.destroy();
      echo.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
