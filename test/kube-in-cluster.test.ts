// The in-cluster configuration meshgate's pods run with (their service account, as
// @kubernetes/client-node reads it), pinned here because a real cluster depends on it and the
// stand-in cannot show it: an IPv6 KUBERNETES_SERVICE_HOST becomes a bracketed URL; the projected
// token, which the kubelet rotates (it expires), is read from its file again rather than kept for
// the life of the process; the API server's CA is read from the file mounted beside it.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HttpMethod, KubeConfig, RequestContext } from '@kubernetes/client-node';

const SA_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

describe('in-cluster configuration', () => {
  let root: string;
  const saved = { host: process.env.KUBERNETES_SERVICE_HOST, port: process.env.KUBERNETES_SERVICE_PORT };
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'meshgate-in-cluster-'));
    await mkdir(join(root, SA_DIR), { recursive: true });
    await writeFile(join(root, SA_DIR, 'token'), 'first-token');
    await writeFile(join(root, SA_DIR, 'namespace'), 'istio-system');
    await writeFile(join(root, SA_DIR, 'ca.crt'), '-----BEGIN CERTIFICATE-----\nnot checked here\n-----END CERTIFICATE-----\n');
  });
  after(async () => {
    for (const [k, v] of [['KUBERNETES_SERVICE_HOST', saved.host], ['KUBERNETES_SERVICE_PORT', saved.port]] as const) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    await rm(root, { recursive: true, force: true });
  });

  const inCluster = (host: string): KubeConfig => {
    process.env.KUBERNETES_SERVICE_HOST = host;
    process.env.KUBERNETES_SERVICE_PORT = '443';
    const kc = new KubeConfig();
    kc.loadFromCluster(root);
    return kc;
  };

  it('an IPv6 service host is bracketed; IPv4 is not', () => {
    assert.equal(inCluster('fd00:10:96::1').getCurrentCluster()?.server, 'https://[fd00:10:96::1]:443');
    assert.equal(inCluster('10.96.0.1').getCurrentCluster()?.server, 'https://10.96.0.1:443');
  });

  it('reads the rotated token from its file again (within a minute), and the CA from the mounted file', async (t) => {
    t.mock.timers.enable({ apis: ['Date'], now: Date.parse('2026-01-01T00:00:00Z') });
    const kc = inCluster('10.96.0.1');
    const authorization = async (): Promise<string | undefined> => {
      const ctx = new RequestContext('https://10.96.0.1:443/api/v1/namespaces', HttpMethod.GET);
      await kc.applySecurityAuthentication(ctx);
      return ctx.getHeaders()['Authorization'];
    };
    assert.equal(await authorization(), 'Bearer first-token');
    assert.equal(kc.getCurrentCluster()?.caFile, join(root, SA_DIR, 'ca.crt'));
    // The kubelet writes the new token well before the old one expires.
    await writeFile(join(root, SA_DIR, 'token'), 'rotated-token');
    t.mock.timers.tick(61_000);
    assert.equal(await authorization(), 'Bearer rotated-token');
  });
});
