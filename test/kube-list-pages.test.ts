// Lists in pages, as client-go's reflector makes them: `limit=500` and `continue` until the server
// sends no token, the pages joined into one list and the watch resumed from its resourceVersion; an
// expired continue token (410, reason Expired) lists again from the first page, and the informer
// keeps what it had until a whole list is in; all the pages of a list share one connection (one TLS
// handshake). The stand-in pages as kube-apiserver does (one snapshot per list, opaque tokens,
// remainingItemCount only without selectors).

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { KubeInformer } from '../src/core/sources/kube-informer.js';
import { listCollection } from '../src/core/sources/kube-list.js';
import { memoryLogger } from './helpers/memory-logger.js';
import { informed } from './helpers/informed.js';
import { startKubeApi, type KubeApiStandIn, type SeenRequest } from './helpers/kube-api.js';
import { newRoot } from './helpers/mesh-tls.js';
import { issueCertificate } from '../src/core/tls/issue-certificate.js';

const FAST = { initialMs: 20, maxMs: 200 };
const silent = pino({ level: 'silent' });

const listCalls = (api: KubeApiStandIn, path: string): SeenRequest[] => api.requests.filter((r) => r.path === path && r.query.watch === undefined);
const configMap = (name: string, namespace: string, data = name) => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace, labels: { app: 'paged' } }, data: { k: data } });

describe('lists in pages', () => {
  let api: KubeApiStandIn;
  before(async () => {
    // Pages exactly as large as the client asks: the page size under test is the client's.
    api = await startKubeApi({ maxPageSize: Infinity });
  });
  after(async () => {
    await api.close();
  });

  const calls = (path: string): SeenRequest[] => listCalls(api, path);
  const watches = (path: string): SeenRequest[] => api.requests.filter((r) => r.path === path && r.query.watch === 'true');
  const names = (i: KubeInformer): string[] => i.list().map((o) => String(o.metadata?.name)).sort();
  const get = async (path: string): Promise<{ status: number; body: any }> => {
    const res = await fetch(`${api.url}${path}`, { headers: { authorization: `Bearer ${api.token}` } });
    return { status: res.status, body: await res.json() };
  };

  it('the stand-in pages as kube-apiserver does: limit, opaque continue, remainingItemCount without selectors only', async () => {
    for (let n = 0; n < 5; n++) api.apply(configMap(`s-${n}`, 'standin'));
    const path = '/api/v1/namespaces/standin/configmaps';
    const first = await get(`${path}?limit=2`);
    assert.deepEqual(first.body.items.map((o: any) => o.metadata.name), ['s-0', 's-1']);
    assert.equal(first.body.metadata.remainingItemCount, 3);
    const token = first.body.metadata.continue as string;
    assert.match(token, /^[A-Za-z0-9_-]+$/);
    // A change between pages does not show: every page is read from the first one's snapshot.
    api.apply(configMap('s-4', 'standin', 'changed'));
    const second = await get(`${path}?limit=2&continue=${token}`);
    assert.equal(second.body.metadata.resourceVersion, first.body.metadata.resourceVersion);
    assert.deepEqual(second.body.items.map((o: any) => o.metadata.name), ['s-2', 's-3']);
    const last = await get(`${path}?limit=2&continue=${second.body.metadata.continue}`);
    assert.deepEqual(last.body.items.map((o: any) => [o.metadata.name, o.data.k]), [['s-4', 's-4']]);
    assert.equal(last.body.metadata.continue, undefined);
    assert.equal(last.body.metadata.remainingItemCount, undefined);
    const selected = await get(`${path}?limit=2&labelSelector=app%3Dpaged`);
    assert.ok(selected.body.metadata.continue);
    assert.equal(selected.body.metadata.remainingItemCount, undefined, 'unknown with a selector');
    assert.equal((await get(`${path}?limit=2&continue=not-a-token`)).status, 400);
    api.paging.expireContinues();
    const expired = await get(`${path}?limit=2&continue=${token}`);
    assert.equal(expired.status, 410);
    assert.equal(expired.body.reason, 'Expired');
    assert.ok(expired.body.metadata.continue, 'a token to go on inconsistently, as kube-apiserver sends');
  });

  it('reads 1,200 Services in three pages of at most 500 and has all of them', async () => {
    for (let n = 0; n < 1200; n++) api.apply({ apiVersion: 'v1', kind: 'Service', metadata: { name: `svc-${String(n).padStart(4, '0')}`, namespace: 'big' }, spec: { ports: [{ port: 80 }] } });
    const path = '/api/v1/namespaces/big/services';
    const i = new KubeInformer({ kubeconfig: api.kubeconfig(), path, logger: silent, backoff: FAST, debounceMs: 5 });
    try {
      await i.start();
      assert.equal(i.list().length, 1200);
      assert.equal(new Set(names(i)).size, 1200);
      const pages = calls(path);
      assert.deepEqual(pages.map((r) => r.query.limit), ['500', '500', '500']);
      assert.deepEqual(pages.map((r) => r.query.continue === undefined), [true, false, false]);
      assert.ok(pages.every((r) => r.status === 200));
    } finally {
      await i.close();
    }
  });

  it('watches from the paged list resourceVersion: changes made between pages arrive once, none lost', async () => {
    const ns = 'midlist';
    const path = `/api/v1/namespaces/${ns}/configmaps`;
    for (let n = 0; n < 7; n++) api.apply(configMap(`m-${n}`, ns));
    const listedAt = api.apply(configMap('m-7', ns));
    // After the first page: one object already sent changes, one not yet sent goes, one is added.
    api.paging.onPage = ({ plural, page }) => {
      if (plural !== 'configmaps' || page !== 1) return;
      api.paging.onPage = undefined;
      api.apply(configMap('m-0', ns, 'changed'));
      api.delete('ConfigMap', ns, 'm-6');
      api.apply(configMap('m-new', ns));
    };
    const i = new KubeInformer({ kubeconfig: api.kubeconfig(), path, logger: silent, backoff: FAST, debounceMs: 5, listPageSize: 3 });
    try {
      await i.start();
      assert.equal(calls(path).length, 3, 'three pages');
      // The list is the snapshot of its first page: the changes made meanwhile are not in it yet.
      await api.until(() => watches(path).length === 1, 'the watch');
      assert.equal(watches(path)[0]!.query.resourceVersion, listedAt, 'the watch takes up where the list was read');
      await informed(i, () => names(i).includes('m-new') && !names(i).includes('m-6'), 'the changes made between pages');
      assert.deepEqual(names(i), ['m-0', 'm-1', 'm-2', 'm-3', 'm-4', 'm-5', 'm-7', 'm-new']);
      assert.deepEqual(i.get('m-0', ns)?.data, { k: 'changed' });
      const stored = api.all('ConfigMap').filter((o) => o.metadata.namespace === ns);
      assert.deepEqual(i.list().map((o) => o.metadata?.resourceVersion).sort(), stored.map((o) => o.metadata.resourceVersion).sort(), 'every object at its latest version');
    } finally {
      api.paging.onPage = undefined;
      await i.close();
    }
  });

  it('lists again from the first page when a continue token expired (the history compacted between pages)', async () => {
    const ns = 'compacted';
    const path = `/api/v1/namespaces/${ns}/configmaps`;
    for (let n = 0; n < 7; n++) api.apply(configMap(`c-${n}`, ns));
    api.paging.onPage = ({ plural, page }) => {
      if (plural !== 'configmaps' || page !== 1) return;
      api.paging.onPage = undefined;
      api.apply(configMap('c-late', ns));
      api.compact();
    };
    const { logger, lines } = memoryLogger();
    const i = new KubeInformer({ kubeconfig: api.kubeconfig(), path, logger, backoff: FAST, debounceMs: 5, listPageSize: 3 });
    try {
      await i.start();
      assert.deepEqual(names(i), ['c-0', 'c-1', 'c-2', 'c-3', 'c-4', 'c-5', 'c-6', 'c-late']);
      const pages = calls(path);
      assert.deepEqual(pages.map((r) => [r.query.continue === undefined, r.status]), [[true, 200], [false, 410], [true, 200], [false, 200], [false, 200]]);
      assert.ok(lines.some((l) => l.msg === 'Kubernetes API list expired between two pages; listing again from the first' && l.pagesRead === 1));
    } finally {
      api.paging.onPage = undefined;
      await i.close();
    }
  });

  it('keeps the last whole list while a re-list keeps expiring, then takes the new one whole', async () => {
    const ns = 'relist';
    const path = `/api/v1/namespaces/${ns}/configmaps`;
    for (let n = 0; n < 7; n++) api.apply(configMap(`r-${n}`, ns));
    const i = new KubeInformer({ kubeconfig: api.kubeconfig(), path, logger: silent, backoff: FAST, debounceMs: 5, listPageSize: 2 });
    try {
      await i.start();
      const old = names(i);
      await api.until(() => api.openWatches('configmaps') === 1, 'watching');
      // The informer misses a change and its watch is refused as too old: it must list again, and
      // every continuation of that list expires, more often than one list restarts itself.
      api.holdWatches();
      api.delete('ConfigMap', ns, 'r-0');
      api.apply(configMap('r-new', ns));
      api.compact();
      const seen: string[][] = [];
      api.paging.onPage = ({ plural }) => {
        if (plural === 'configmaps') seen.push(names(i));
      };
      const listsBefore = calls(path).length;
      api.paging.expireContinues(4);
      api.expireWatches();
      await informed(i, () => names(i).includes('r-new'), 'the re-list applied');
      const relist = calls(path).slice(listsBefore);
      assert.equal(relist.filter((r) => r.status === 410).length, 4, 'four continuations refused');
      assert.ok(seen.length >= 5 && seen.every((s) => JSON.stringify(s) === JSON.stringify(old)), 'no half list ever served meanwhile');
      assert.deepEqual(names(i), ['r-1', 'r-2', 'r-3', 'r-4', 'r-5', 'r-6', 'r-new']);
    } finally {
      api.paging.onPage = undefined;
      await i.close();
    }
  });

  it('lists with its selectors on every page and the page size asked for', async () => {
    const ns = 'selected';
    for (let n = 0; n < 5; n++) api.apply(configMap(`l-${n}`, ns));
    api.apply({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'other', namespace: ns }, data: {} });
    const path = `/api/v1/namespaces/${ns}/configmaps`;
    const list = await listCollection(api.kubeconfig(), path, new AbortController().signal, { labelSelector: 'app=paged', pageSize: 2 });
    assert.deepEqual(list.items.map((o) => o.metadata?.name), ['l-0', 'l-1', 'l-2', 'l-3', 'l-4']);
    assert.match(list.metadata.resourceVersion ?? '', /^\d+$/);
    const pages = calls(path);
    assert.equal(pages.length, 3);
    assert.ok(pages.every((r) => r.query.labelSelector === 'app=paged' && r.query.limit === '2'));
  });
});

describe('lists in pages over TLS', () => {
  it('reads every page of one list over one connection: one handshake, not one a page', async () => {
    const root = newRoot('kube-api-ca');
    const serving = issueCertificate({ subjectCN: 'kube-apiserver', ipAddresses: ['127.0.0.1'], issuer: root, days: 1, keyType: 'ec' });
    const api = await startKubeApi({ tls: { ...serving, caPem: root.certPem } });
    try {
      for (let n = 0; n < 7; n++) api.apply(configMap(`t-${n}`, 'tls'));
      const path = '/api/v1/namespaces/tls/configmaps';
      const before = api.connections;
      const list = await listCollection(api.kubeconfig(), path, new AbortController().signal, { pageSize: 1 });
      assert.equal(list.items.length, 7);
      assert.equal(listCalls(api, path).length, 7, 'seven pages');
      assert.equal(api.connections - before, 1);
    } finally {
      await api.close();
    }
  });
});
