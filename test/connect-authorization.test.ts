// CONNECT at a gateway meets AuthorizationPolicy before anything says it has no route, as Envoy's
// RBAC filter runs before its router: a policy that denies it answers 403 `RBAC: access denied`,
// and only an allowed CONNECT gets 404 NR. Before, the parse stage answered 404 first. (The
// sidecar's inbound side: sidecar-inbound-connect.test.ts.)

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { authorizationPolicy } from './helpers/cluster-yaml.js';
import { eventually } from './helpers/gateway.js';
import { h2Request, h2Session, rawExchange } from './helpers/raw-http.js';
import { HOST, targetGatewayForSuite } from './helpers/target-config.js';

describe('CONNECT at a gateway: authorization first, then 404', () => {
  const suite = targetGatewayForSuite();

  it('a policy denying everything at the gateway answers CONNECT 403 on HTTP/1 and HTTP/2; without it, 404', async () => {
    const { app, target } = suite;
    const ask = (): Promise<{ status: number; text: string }> =>
      rawExchange(target.plain, `CONNECT 127.0.0.1:${app.port} HTTP/1.1\r\nhost: 127.0.0.1:${app.port}\r\n\r\n`);
    assert.match((await ask()).text, /^HTTP\/1\.1 404 /);
    await writeFile(join(target.configDir, 'deny.yaml'), authorizationPolicy('deny-all', 'istio-system', '{matchLabels: {istio: ingressgateway}}', ''));
    await eventually(async () => (await rawExchange(target.plain, `GET / HTTP/1.1\r\nhost: ${HOST}\r\nconnection: close\r\n\r\n`)).status === 403);
    const before = app.seen.length;
    const r = await ask();
    assert.match(r.text, /^HTTP\/1\.1 403 /, r.text);
    assert.match(r.text, /RBAC: access denied/);
    const h2 = await h2Session(target.tlsPort, target.tls);
    try {
      assert.equal((await h2Request(h2, { ':method': 'CONNECT', ':authority': `127.0.0.1:${app.port}` })).status, 403);
    } finally {
      h2.destroy();
    }
    assert.equal(app.seen.length, before, 'nothing reached the app');
  });
});
