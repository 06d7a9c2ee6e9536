// How meshgate's watches behave against what a real API server does to them over hours: each watch
// asks for bookmarks and a 5–10 minute server-side lifetime, as client-go's do; a watch the server
// ends is resumed from the last version seen (no re-list); a bookmark moves that version, so a quiet
// collection resumes even after the server's history moved on (no 410, no re-list); credentials
// that fail on a reconnect are a logged, retried failure, never an unhandled rejection.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { pino, type Logger } from 'pino';
import { KubeInformer } from '../src/core/sources/kube-informer.js';
import { FailureWarnings } from '../src/core/sources/kube-request.js';
import { memoryLogger } from './helpers/memory-logger.js';
import { informed } from './helpers/informed.js';
import { startKubeApi, type KubeApiStandIn, type SeenRequest } from './helpers/kube-api.js';

const FAST = { initialMs: 20, maxMs: 200 };
const PATH = '/api/v1/namespaces/quiet/configmaps';

const configMap = (name: string, ns = 'quiet') => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: ns }, data: { k: name } });

describe('watches as a real API server treats them', () => {
  let api: KubeApiStandIn;
  before(async () => {
    api = await startKubeApi();
  });
  after(async () => {
    await api.close();
  });

  const lists = (): SeenRequest[] => api.requests.filter((r) => r.path === PATH && r.query.watch === undefined && r.query.continue === undefined);
  const watches = (): SeenRequest[] => api.requests.filter((r) => r.path === PATH && r.query.watch === 'true');
  const names = (i: KubeInformer): string[] => i.list().map((o) => String(o.metadata?.name)).sort();

  async function informer(logger: Logger = pino({ level: 'silent' })): Promise<KubeInformer> {
    const i = new KubeInformer({ kubeconfig: api.kubeconfig(), path: PATH, logger, backoff: FAST, debounceMs: 5 });
    await i.start();
    await api.until(() => api.openWatches('configmaps') === 1, 'the collection watched');
    return i;
  }

  it('asks for bookmarks and a server-side lifetime of 5 to 10 minutes on every watch', async () => {
    const i = await informer();
    try {
      const w = watches().at(-1)!;
      assert.equal(w.query.allowWatchBookmarks, 'true');
      const seconds = Number(w.query.timeoutSeconds);
      assert.ok(seconds >= 300 && seconds < 600, `timeoutSeconds=${w.query.timeoutSeconds}`);
    } finally {
      await i.close();
    }
  });

  it('resumes a watch the server ended from the last version it saw, without listing again', async () => {
    api.apply(configMap('first'));
    const i = await informer();
    try {
      const listed = lists().length;
      const before = watches().length;
      const lastSeen = api.apply(configMap('second'));
      await informed(i, () => names(i).includes('second'), 'the change watched');
      // The server's watch timeout: the stream ends normally. A change in the gap must not be lost.
      api.closeWatches();
      api.apply(configMap('in-the-gap'));
      await informed(i, () => names(i).includes('in-the-gap'), 'the change made between two watches');
      assert.equal(lists().length, listed, 'no re-list');
      assert.equal(watches()[before]!.query.resourceVersion, lastSeen, 'resumed from the last version seen');
      assert.deepEqual(names(i), ['first', 'in-the-gap', 'second']);
    } finally {
      await i.close();
    }
  });

  it('resumes after an ERROR event that is not 410 from the version it had, without listing again', async () => {
    const i = await informer();
    try {
      const listed = lists().length;
      const before = watches().length;
      const lastSeen = api.apply(configMap('before-error'));
      await informed(i, () => names(i).includes('before-error'), 'the change watched');
      api.expireWatches(500);
      api.apply(configMap('after-error'));
      await informed(i, () => names(i).includes('after-error'), 'the change made after the error');
      assert.equal(lists().length, listed, 'no re-list');
      assert.equal(watches()[before]!.query.resourceVersion, lastSeen);
    } finally {
      await i.close();
    }
  });

  it('the stand-in ends a watch normally when its timeoutSeconds are up, as the API server does', async () => {
    const res = await fetch(`${api.url}${PATH}?watch=true&timeoutSeconds=1`, { headers: { authorization: `Bearer ${api.token}` } });
    assert.equal(res.status, 200);
    // Read to its end (a watch that stayed open would hold this forever): the current objects, no error.
    const types = (await res.text()).split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { type: string }).type);
    assert.deepEqual([...new Set(types)], ['ADDED']);
  });

  it('resumes a quiet collection from its last bookmark after the history moved on: no 410, no re-list', async () => {
    api.apply(configMap('still'));
    const i = await informer();
    try {
      const listed = lists().length;
      // Other namespaces change; this one does not. The bookmark tells the watch how far it is.
      for (let n = 0; n < 5; n++) api.apply(configMap(`busy-${n}`, 'busy'));
      const at = api.apply(configMap('busy-last', 'busy'));
      const before = watches().length;
      assert.equal(api.bookmark(), 1, 'the watch asked for bookmarks');
      // The history is forgotten and the watch ended: the client reads the bookmark first, on the
      // same stream, as it would the bookmark of an hour ago.
      api.compact();
      api.closeWatches();
      await api.until(() => watches().length > before && api.openWatches('configmaps') === 1, 'watching again');
      const resumed = watches()[before]!;
      assert.equal(resumed.query.resourceVersion, at, 'resumed from the bookmark');
      assert.equal(resumed.status, 200, 'not refused as too old');
      assert.equal(lists().length, listed, 'no re-list');
      api.apply(configMap('after'));
      await informed(i, () => names(i).includes('after'), 'changes still arrive');
    } finally {
      await i.close();
    }
  });

  it('treats credentials that fail on a reconnect as a logged failure, retried until they work', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (err: unknown): void => void unhandled.push(err);
    process.on('unhandledRejection', onUnhandled);
    const log = memoryLogger();
    const kc = api.kubeconfig();
    const i = new KubeInformer({ kubeconfig: kc, path: PATH, logger: log.logger, backoff: FAST, debounceMs: 5 });
    await i.start();
    try {
      await api.until(() => api.openWatches('configmaps') === 1, 'watching');
      // An exec credential plugin that starts failing, say: the error comes before any request.
      const working = kc.applySecurityAuthentication.bind(kc);
      let refused = 0;
      const retried = new Promise<void>((resolve, reject) => {
        // Without the failure reaching the informer, nothing would retry: say so rather than hang.
        const late = setTimeout(() => reject(new Error(`not retried in 20 s (${unhandled.length} unhandled rejections)`)), 20_000);
        kc.applySecurityAuthentication = async () => {
          if (++refused === 2) resolve(clearTimeout(late));
          throw new Error('credential plugin failed');
        };
      });
      api.closeWatches();
      await retried;
      assert.ok(log.lines.some((l) => l.level === 40 && String(l.error).includes('credential plugin failed')), 'the failure was logged as a warning');
      kc.applySecurityAuthentication = working;
      await api.until(() => api.openWatches('configmaps') === 1, 'watching again once the credentials work');
      api.apply(configMap('recovered'));
      await informed(i, () => names(i).includes('recovered'), 'changes arrive again');
      assert.deepEqual(unhandled, []);
    } finally {
      process.off('unhandledRejection', onUnhandled);
      await i.close();
    }
  });

  it('keeps warning about a failure that lasts, every 5 minutes, and counts from its first', () => {
    let now = 1_000_000;
    const w = new FailureWarnings(5 * 60_000, () => now);
    const at = (s: number, text = '403 Forbidden') => ((now = 1_000_000 + s * 1000), w.failed(text));
    assert.deepEqual(at(0), { warn: true, failingForS: 0 });
    assert.deepEqual(at(30), { warn: false, failingForS: 30 });
    assert.deepEqual(at(60, 'ECONNREFUSED'), { warn: true, failingForS: 60 }, 'a new cause is said at once');
    assert.deepEqual(at(359, 'ECONNREFUSED'), { warn: false, failingForS: 359 });
    assert.deepEqual(at(360, 'ECONNREFUSED'), { warn: true, failingForS: 360 }, 'the same cause again after 5 minutes');
    w.recovered();
    assert.deepEqual(at(400, 'ECONNREFUSED'), { warn: true, failingForS: 0 }, 'a failure after a recovery is new');
  });
});
