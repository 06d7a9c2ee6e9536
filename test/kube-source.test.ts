// KubeSource against a list/watch stand-in of the API server, with the real @kubernetes/client-node
// underneath: the initial set, changes, 410 Gone, absent CRDs, server errors, dropped connections,
// start-up failures and a clean close; then the real gateway routing by what `kubectl apply` put in.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { KubeConfig } from '@kubernetes/client-node';
import { KubeSource, type KubeSourceOptions } from '../src/core/sources/kube-source.js';
import type { ConfigUpdate } from '../src/core/sources/source.js';
import { validateAll } from '../src/core/config/validate.js';
import { formatProblem } from '../src/core/config/problem.js';
import { memoryLogger } from './helpers/memory-logger.js';
import { startKubeApi, type KubeApiStandIn } from './helpers/kube-api.js';
import { startUpstream, closedPort, type Upstream } from './helpers/upstream.js';
import { eventually, send } from './helpers/gateway.js';
import { gatewayYaml, serviceYaml } from './helpers/cluster-yaml.js';
import { startGateway } from '../src/gateway/main.js';
import { runGatewayCommand } from '../src/cli/gateway.js';

const FAST = { initialMs: 50, maxMs: 400 };

const service = (name: string, ns = 'default') => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, namespace: ns },
  spec: { selector: { app: name }, ports: [{ name: 'http', port: 80 }] },
});
const virtualService = (name: string, host: string, dest: string, extra: Record<string, unknown> = {}) => ({
  apiVersion: 'networking.istio.io/v1',
  kind: 'VirtualService',
  metadata: { name, namespace: 'default', ...extra },
  spec: { hosts: [host], gateways: ['gw'], http: [{ route: [{ destination: { host: dest } }] }] },
});

interface Watched {
  readonly source: KubeSource;
  readonly updates: ConfigUpdate[];
  latest(): ConfigUpdate;
  names(kind: string): string[];
}

async function watch(api: KubeApiStandIn, opts: Partial<KubeSourceOptions> = {}): Promise<Watched> {
  const source = new KubeSource({ kubeconfig: api.kubeconfig(), debounceMs: 20, backoff: FAST, logger: pino({ level: 'silent' }), ...opts });
  const updates: ConfigUpdate[] = [];
  await source.start((u) => updates.push(u));
  const latest = () => updates[updates.length - 1]!;
  const names = (kind: string) => latest().resources.filter((r) => r.kind === kind).map((r) => `${r.metadata.namespace}/${r.metadata.name}`).sort();
  return { source, updates, latest, names };
}

async function until(check: () => boolean, what: string, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`not reached in ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('KubeSource', () => {
  let api: KubeApiStandIn;
  before(async () => {
    api = await startKubeApi();
  });
  after(async () => {
    await api.close();
  });

  it('delivers one complete first set, shaped like resources read from files', async () => {
    api.apply({ ...service('reviews'), metadata: { name: 'reviews', namespace: 'default', creationTimestamp: '2024-01-01T00:00:02Z' } });
    api.apply(virtualService('b-later', 'b.example.com', 'reviews', { creationTimestamp: '2024-01-01T00:00:05Z' }));
    api.apply(virtualService('a-early', 'a.example.com', 'reviews', { creationTimestamp: '2024-01-01T00:00:01Z' }));
    api.applyYaml(serviceYaml('ratings', [{ pod: 'ratings-1', port: 9080 }]));
    const w = await watch(api);
    try {
      assert.equal(w.updates.length, 1, 'no partial set before every kind is listed');
      assert.deepEqual(w.names('Service'), ['default/ratings', 'default/reviews']);
      assert.deepEqual(w.names('VirtualService'), ['default/a-early', 'default/b-later']);
      assert.deepEqual(w.names('Pod'), ['default/ratings-1']);
      assert.deepEqual(w.names('EndpointSlice'), ['default/ratings-1-slice']);
      assert.deepEqual(w.latest().problems, []);

      const svc = w.latest().resources.find((r) => r.metadata.name === 'reviews')!;
      // The list leaves apiVersion/kind off built-in items; the resource has them all the same.
      assert.equal(svc.apiVersion, 'v1');
      assert.equal(svc.kind, 'Service');
      assert.equal(svc.origin.file, 'kube:Service/default/reviews');
      assert.equal(svc.origin.line, 1);
      assert.equal(svc.origin.lineOf(['spec', 'ports', 0]), 1);
      assert.equal(svc.metadata.creationTimestamp, '2024-01-01T00:00:02Z');
      assert.match(svc.metadata.resourceVersion ?? '', /^\d+$/);
      const slice = w.latest().resources.find((r) => r.kind === 'EndpointSlice')!;
      assert.equal(slice.apiVersion, 'discovery.k8s.io/v1');
      assert.ok(Array.isArray(slice.raw.endpoints), 'payload outside spec stays in raw');

      // order follows creationTimestamp across kinds
      const order = w.latest().resources.filter((r) => ['a-early', 'reviews', 'b-later'].includes(r.metadata.name)).sort((a, b) => a.origin.order - b.origin.order);
      assert.deepEqual(order.map((r) => r.metadata.name), ['a-early', 'reviews', 'b-later']);

      // problems name the object the way a person finds it
      const bad = { ...virtualService('bad', 'c.example.com', 'reviews'), spec: { hosts: ['c.example.com'], http: [{ route: [{ destination: { host: 'reviews' }, weight: -1 }] }] } };
      api.apply(bad);
      await until(() => w.names('VirtualService').includes('default/bad'), 'bad VirtualService delivered');
      const { problems } = validateAll(w.latest().resources);
      const line = problems.map(formatProblem).find((p) => p.includes('default/bad'));
      assert.match(line ?? '', /^kube:VirtualService\/default\/bad:1 VirtualService default\/bad spec\.http\[0\]\.route\[0\]\.weight: /);
      api.delete('VirtualService', 'default', 'bad');

      assert.ok(api.requests.length > 0);
      for (const r of api.requests) assert.equal(r.authorization, `Bearer ${api.token}`, `${r.path} carried the token`);
      const watches = api.requests.filter((r) => r.query.watch === 'true');
      assert.ok(watches.some((r) => r.path === '/apis/networking.istio.io/v1/virtualservices' && /^\d+$/.test(r.query.resourceVersion ?? '')));
    } finally {
      await w.source.close();
    }
  });

  it('emits the whole set again after apply and after delete', async () => {
    api.apply(service('stays'));
    const w = await watch(api);
    try {
      api.apply(service('details'));
      await until(() => w.names('Service').includes('default/details'), 'details added');
      const before = w.updates.length;
      api.apply({ ...service('details'), spec: { selector: { app: 'details' }, ports: [{ name: 'http', port: 9080 }] } });
      await until(() => w.updates.length > before, 'update after modify');
      const details = w.latest().resources.find((r) => r.metadata.name === 'details')!;
      assert.equal((details.spec as { ports: Array<{ port: number }> }).ports[0]!.port, 9080);
      assert.ok(w.names('Service').includes('default/stays'), 'the whole set, not a delta');

      api.delete('Service', 'default', 'details');
      await until(() => !w.names('Service').includes('default/details'), 'details deleted');
      assert.ok(w.names('Service').includes('default/stays'));
    } finally {
      await w.source.close();
    }
  });

  for (const goneAs of ['event', 'status'] as const) {
    it(`re-lists on 410 Gone (${goneAs === 'event' ? 'ERROR event with code 410' : 'HTTP 410 on the watch'}); objects deleted meanwhile disappear`, async () => {
      api.goneAs = goneAs;
      api.apply(service(`keep-${goneAs}`));
      api.apply(service(`doomed-${goneAs}`));
      const w = await watch(api);
      try {
        assert.ok(w.names('Service').includes(`default/doomed-${goneAs}`));
        const lists = () => api.requests.filter((r) => r.path === '/api/v1/services' && r.query.watch === undefined && r.query.continue === undefined).length;
        const listsBefore = lists();
        // The source misses the deletion (stalled watch), and the history that held it is gone.
        api.holdWatches();
        api.delete('Service', 'default', `doomed-${goneAs}`);
        api.apply(service(`born-${goneAs}`));
        api.compact();
        if (goneAs === 'event') api.expireWatches();
        else api.closeWatches();
        await until(() => !w.names('Service').includes(`default/doomed-${goneAs}`) && w.names('Service').includes(`default/born-${goneAs}`), 'the re-list applied');
        assert.ok(lists() > listsBefore, 'the collection was listed again');
        const refused = api.requests.filter((r) => r.path === '/api/v1/services' && r.query.watch === 'true' && r.status === 410);
        if (goneAs === 'status') assert.ok(refused.length >= 1, 'the watch from the old version was refused with 410');
        // One re-list settles it: no loop of lists.
        const settled = lists();
        await new Promise((r) => setTimeout(r, 300));
        assert.equal(lists(), settled);
        assert.ok(w.names('Service').includes(`default/keep-${goneAs}`));
        assert.ok(w.latest().resources.every((r) => r.kind !== 'Service' || r.metadata.name !== `doomed-${goneAs}`));
      } finally {
        api.goneAs = 'event';
        await w.source.close();
      }
    });
  }

  it('treats a kind whose CRD is absent as empty, warns once, and picks it up when it appears', async () => {
    api.setAbsent('destinationrules', true);
    api.apply({ apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name: 'reviews', namespace: 'default' }, spec: { host: 'reviews' } });
    const log = memoryLogger();
    api.apply(service('plain'));
    const w = await watch(api, { logger: log.logger });
    try {
      assert.ok(w.names('Service').includes('default/plain'), 'Services still delivered');
      assert.deepEqual(w.names('DestinationRule'), []);
      // several retries happen meanwhile, but the warning is said once
      await until(() => api.requests.filter((r) => r.path.endsWith('/destinationrules')).length >= 4, 'retries');
      const warnings = log.lines.filter((l) => l.level === 40 && String(l.msg).includes('destinationrules'));
      assert.equal(warnings.length, 1);
      assert.match(String(warnings[0]!.msg), /networking\.istio\.io\/v1 destinationrules.*CRD/);

      api.setAbsent('destinationrules', false);
      await until(() => w.names('DestinationRule').includes('default/reviews'), 'DestinationRule picked up');
      api.apply({ apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name: 'ratings', namespace: 'default' }, spec: { host: 'ratings' } });
      await until(() => w.names('DestinationRule').includes('default/ratings'), 'and watched from then on');
    } finally {
      api.setAbsent('destinationrules', false);
      await w.source.close();
    }
  });

  it('recovers from a 500 on the first list, a 500 on a watch and a dropped connection', async () => {
    api.apply(service('steady'));
    api.failNext('pods', { on: 'list', status: 500 });
    const log = memoryLogger();
    const w = await watch(api, { logger: log.logger });
    try {
      assert.ok(w.names('Service').includes('default/steady'));
      assert.ok(log.lines.some((l) => l.level === 40 && String(l.error).includes('500')), 'the failure was logged');

      await until(() => api.openWatches('services') === 1, 'services watched');
      api.failNext('services', { on: 'watch', status: 500, times: 2 });
      api.dropWatches();
      api.apply(service('after-drop'));
      await until(() => w.names('Service').includes('default/after-drop'), 'change made while disconnected arrives');
      api.apply(service('after-reconnect'));
      await until(() => w.names('Service').includes('default/after-reconnect'), 'and later changes too');
      assert.ok(w.names('Service').includes('default/steady'), 'the set kept serving');
    } finally {
      await w.source.close();
    }
  });

  it('reads only the namespaces it is given', async () => {
    api.apply(service('mine', 'team-a'));
    api.apply(service('theirs', 'team-b'));
    const w = await watch(api, { namespaces: ['team-a'] });
    try {
      assert.deepEqual(w.names('Service'), ['team-a/mine']);
      api.apply(service('mine-too', 'team-a'));
      api.apply(service('theirs-too', 'team-b'));
      await until(() => w.names('Service').includes('team-a/mine-too'), 'namespaced watch');
      assert.deepEqual(w.names('Service'), ['team-a/mine', 'team-a/mine-too']);
      assert.ok(api.requests.some((r) => r.path === '/api/v1/namespaces/team-a/services'));
    } finally {
      await w.source.close();
    }
  });

  it('start() rejects with the server and the cause when it cannot list (403, nothing listening)', async () => {
    api.setForbidden('pods', true);
    // The message names the cause only if the first answers arrived before the start deadline: it
    // leaves a loaded machine seconds for a loopback round trip rather than a fraction of one.
    try {
      const forbidden = new KubeSource({ kubeconfig: api.kubeconfig(), startTimeoutMs: 3000, backoff: FAST });
      await assert.rejects(forbidden.start(() => undefined), (err: Error) => {
        assert.ok(err.message.includes(api.url), err.message);
        assert.match(err.message, /403 Forbidden from GET \/api\/v1\/pods: pods is forbidden/);
        assert.ok(!err.message.includes('/api/v1/services'), 'only what failed is named');
        return true;
      });
      await forbidden.close();
    } finally {
      api.setForbidden('pods', false);
    }

    const port = await closedPort();
    const kc = new KubeConfig();
    kc.loadFromString(api.kubeconfigYaml().replace(api.url, `http://127.0.0.1:${port}`));
    const nowhere = new KubeSource({ kubeconfig: kc, startTimeoutMs: 3000, backoff: FAST });
    await assert.rejects(nowhere.start(() => undefined), (err: Error) => {
      assert.ok(err.message.includes(`http://127.0.0.1:${port}`), err.message);
      assert.match(err.message, /ECONNREFUSED/);
      return true;
    });
    await nowhere.close();
  });

  it('close() and destroy() are safe twice and stop all requests', async () => {
    const w = await watch(api);
    await until(() => api.openWatches() >= 12, 'every collection watched');
    await w.source.close();
    await w.source.close();
    w.source.destroy();
    await until(() => api.openWatches() === 0, 'watches closed');
    const count = api.requests.length;
    const updates = w.updates.length;
    api.apply(service('after-close'));
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(api.requests.length, count, 'no request after close');
    assert.equal(w.updates.length, updates, 'no update after close');
  });

  it('leaves nothing open: a process that starts and closes a source exits by itself', async () => {
    const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
    const script = `
      const { startKubeApi } = await import(${JSON.stringify(here('./helpers/kube-api.js'))});
      const { KubeSource } = await import(${JSON.stringify(here('../src/core/sources/kube-source.js'))});
      const api = await startKubeApi();
      api.apply({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'x' }, spec: {} });
      const source = new KubeSource({ kubeconfig: api.kubeconfig(), debounceMs: 10 });
      let n = 0;
      await source.start(() => n++);
      api.apply({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'y' }, spec: {} });
      while (n < 2) await new Promise((r) => setTimeout(r, 10));
      api.dropWatches();
      await new Promise((r) => setTimeout(r, 50));
      await source.close();
      await api.close();
      console.log('closed');
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'], timeout: 60_000 });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
    assert.equal(out.trim(), 'closed');
    assert.equal(code, 0, 'exited on its own, not killed after 60 s');
  });
});

describe('gateway fed by the Kubernetes API', () => {
  let api: KubeApiStandIn;
  let a: Upstream;
  let b: Upstream;
  before(async () => {
    api = await startKubeApi();
    a = await startUpstream('a');
    b = await startUpstream('b');
  });
  after(async () => {
    await api?.close();
    await a?.close();
    await b?.close();
  });

  it('serves what kubectl apply put in, and reroutes when a VirtualService changes', async () => {
    api.applyYaml(serviceYaml('svc-a', [{ pod: 'a-1', port: a.port }]));
    api.applyYaml(serviceYaml('svc-b', [{ pod: 'b-1', port: b.port }]));
    api.applyYaml(gatewayYaml(['app.example.com']));
    const route = (dest: string) => virtualService('app', 'app.example.com', dest);
    api.apply(route('svc-a'));
    const gw = await startGateway({
      source: new KubeSource({ kubeconfig: api.kubeconfig(), logger: pino({ level: 'silent' }) }),
      ports: new Map([[80, 0]]),
      listenHost: '127.0.0.1',
      statusPort: 0,
      adminPort: 0,
      accessLog: 'off',
      logger: pino({ level: 'silent' }),
    });
    try {
      const port = gw.listenPorts.get(80)!;
      const first = await send(port, 'app.example.com', '/hello');
      assert.equal(first.status, 200);
      assert.equal(first.json().name, 'a');
      assert.equal(first.json().url, '/hello');

      api.apply(route('svc-b'));
      await eventually(async () => (await send(port, 'app.example.com', '/')).json().name === 'b');
      assert.equal((await send(port, 'app.example.com', '/')).status, 200);

      // Deleting the route takes the host away.
      api.delete('VirtualService', 'default', 'app');
      await eventually(async () => (await send(port, 'app.example.com', '/')).status === 404);
    } finally {
      await gw.destroy();
    }
  });
});

describe('meshgate gateway options', () => {
  it('needs exactly one of --config, --config-source kubernetes and --control', async () => {
    await assert.rejects(runGatewayCommand([]), /--config DIR or --config-source kubernetes/);
    await assert.rejects(runGatewayCommand(['--config', 'x', '--config-source', 'kubernetes']), /give one of/);
    await assert.rejects(runGatewayCommand(['--config', 'x', '--control', 'https://cp:15012', '--token', 't']), /give one of/);
    await assert.rejects(runGatewayCommand(['--control', 'http://cp:15012', '--token', 't']), /must be an https:\/\/ URL/);
    await assert.rejects(runGatewayCommand(['--control', 'https://cp:15012', '--token', '']), /--token needs a FILE/);
    await assert.rejects(runGatewayCommand(['--config-source', 'etcd']), /--config-source: 'etcd'/);
    await assert.rejects(runGatewayCommand(['--config', 'x', '--watch-namespaces', 'a']), /--watch-namespaces.*--config-source kubernetes/);
    await assert.rejects(runGatewayCommand(['--config', 'x', '--credentials', 'kubernetes']), /--credentials kubernetes goes with --config-source kubernetes or --control/);
    await assert.rejects(runGatewayCommand(['--config-source', 'kubernetes', '--credentials', 'vault']), /--credentials: 'vault'/);
  });
});
