// ACME under `meshgate gateway --workers 2` (file mode), the real process tree against a real ACME
// server (Debian's pebble): one worker orders, and while pebble's validation waits at a gate the
// test steers, requests for the token on fresh connections (node:cluster deals them to the workers
// in turn) are all answered by whichever worker gets them; then the validation goes through, one
// order is finalized, and the certificate is written once.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startPebble } from './helpers/pebble.js';
import { startTcpGate } from './helpers/tcp-gate.js';
import { startWorkersGateway } from './helpers/gateway-workers.js';
import { eventually } from './helpers/gateway.js';
import { rawExchange } from './helpers/raw-http.js';
import { certificateYaml, gatewayYaml, issuerYaml } from './helpers/cert-manager-yaml.js';

test('--workers 2: one worker orders, every worker answers the HTTP-01 challenge', async (t) => {
  const gate = await startTcpGate();
  t.after(() => gate.close());
  const pebble = await startPebble(t, { httpPort: gate.port });
  if (!pebble) return;
  t.after(() => pebble.close());
  const dir = await mkdtemp(join(tmpdir(), 'meshgate-workers-acme-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const config = join(dir, 'config');
  await mkdir(config);
  await writeFile(join(config, 'acme.yaml'), [issuerYaml(pebble.directoryUrl), certificateYaml('shop-tls', ['shop.example.test']), gatewayYaml('shop-tls', 'shop.example.test')].join('---\n'));
  await writeFile(join(dir, 'acme-ca.pem'), pebble.caPem);

  const gw = await startWorkersGateway(config, 2, ['--ports', '80=0,443=0', '--certs', join(dir, 'certs'), '--acme-ca', join(dir, 'acme-ca.pem')]);
  t.after(() => gw.kill());

  await gate.arrivals(1);
  const path = /^GET (\/\.well-known\/acme-challenge\/[A-Za-z0-9_-]+) HTTP/.exec(gate.requests[0] ?? '')?.[1];
  assert.ok(path, `pebble asked for a token: ${gate.requests[0]}`);
  const answers = [];
  for (let i = 0; i < 8; i++) answers.push(await rawExchange(gw.port, `GET ${path} HTTP/1.1\r\nHost: shop.example.test\r\nConnection: close\r\n\r\n`));
  assert.deepEqual(answers.map((a) => a.status), Array(8).fill(200), 'every worker answers the token');
  const bodies = new Set(answers.map((a) => a.text.split('\r\n\r\n')[1]));
  assert.equal(bodies.size, 1);
  assert.match([...bodies][0]!, new RegExp(`^${path.split('/').pop()}\\.[A-Za-z0-9_-]+$`), 'the key authorization: token.thumbprint');
  assert.equal((await rawExchange(gw.port, 'GET /.well-known/acme-challenge/no-such-token-of-any-order-0000 HTTP/1.1\r\nHost: shop.example.test\r\nConnection: close\r\n\r\n')).status === 200, false, 'an unknown token is not answered');

  gate.forwardTo(gw.port);
  const meta = async () => JSON.parse(await readFile(join(dir, 'certs', 'shop-tls', 'meta.json'), 'utf8').catch(() => '{}')) as { source?: string };
  await eventually(async () => (await meta()).source === 'acme', 20_000);
  assert.equal(pebble.output().split('\n').filter((l) => /POST \/order-plz\b/.test(l)).length, 1, 'one order placed, by one worker');
  assert.equal(pebble.output().split('\n').filter((l) => /POST \/finalize-order\//.test(l)).length, 1, 'one order finalized');
  assert.deepEqual(gw.workers().length, 2);
});
