// The Secret where the ordering replica publishes HTTP-01 answers for every replica, against the API
// stand-in through the real client, each replica with its own client: an answer published while the
// reader's watch is stalled is still found (read again before a 404); a flood of requests for
// made-up tokens shares one read; two publishers never lose each other's tokens; a new orderer
// clears what the previous holder of its Lease left, and nothing else; old leftovers expire.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { KubeSecrets } from '../src/core/sources/kube-secrets.js';
import { CHALLENGE_SECRET, SecretChallenges } from '../src/gateway/acme/secret-challenges.js';
import { startKubeApi, type KubeApiStandIn } from './helpers/kube-api.js';
import { startTcpGate } from './helpers/tcp-gate.js';
import { KubeConfig } from '@kubernetes/client-node';

const logger = pino({ level: 'silent' });
const LEASE = 'meshgate-gateway-acme';
const token = () => randomBytes(32).toString('base64url');

describe('HTTP-01 answers in a Secret, for every replica', () => {
  let api: KubeApiStandIn;
  const opened: KubeSecrets[] = [];
  const replica = async (identity: string, lease = LEASE, extra: Partial<ConstructorParameters<typeof SecretChallenges>[0]> = {}) => {
    const client = api.clientKubeconfig();
    const secrets = new KubeSecrets({ kubeconfig: client.kubeconfig, namespace: 'istio-system', logger, debounceMs: 5 });
    opened.push(secrets);
    await secrets.start();
    return { secrets, token: client.token, board: new SecretChallenges({ secrets, identity, lease, logger, ...extra }) };
  };
  const stored = () => Object.keys(api.get('v1', 'Secret', 'istio-system', CHALLENGE_SECRET)?.data ?? {}).sort();
  const reads = (clientToken: string) => api.requests.filter((r) => r.authorization === `Bearer ${clientToken}` && r.method === 'GET' && r.path.endsWith(`/secrets/${CHALLENGE_SECRET}`)).length;

  before(async () => {
    api = await startKubeApi();
  });
  after(async () => {
    await Promise.all(opened.map((s) => s.close()));
    await api.close();
  });

  it('a replica whose watch lags reads the Secret again before answering 404; made-up tokens share one read', async () => {
    const orderer = await replica('gateway-a');
    const other = await replica('gateway-b');
    await api.until(() => api.openWatches('secrets') === 2, 'both replicas watch the Secrets');
    api.holdWatches(); // the other replica's copy of the Secrets stops following
    const t = token();
    await orderer.board.publish(t, `${t}.thumbprint`);
    assert.equal(other.secrets.get(CHALLENGE_SECRET)?.data[t], undefined, 'not in the lagging copy');
    assert.equal(await other.board.answer(t), `${t}.thumbprint`, 'found by reading the Secret again');
    assert.equal(await orderer.board.answer(t), `${t}.thumbprint`);

    const before = reads(other.token);
    const answers = await Promise.all(Array.from({ length: 50 }, () => other.board.answer(token())));
    assert.deepEqual(new Set(answers), new Set([undefined]));
    assert.equal(reads(other.token) - before, 1, 'fifty misses at once: one read of the Secret');
    assert.equal(other.board.answer('../../etc/passwd'), undefined, 'no token an ACME server sends: answered 404 without a look');
    assert.equal(reads(other.token) - before, 1);

    await orderer.board.withdraw(t);
    assert.deepEqual(stored(), []);
    assert.equal(await other.board.answer(t), undefined, 'withdrawn: 404 on every replica');
    api.dropWatches();
  });

  it('two publishers at once keep both tokens; a new orderer clears only what the previous holder of its Lease left', async () => {
    const a = await replica('gateway-a');
    const b = await replica('gateway-b');
    const elsewhere = await replica('web-gateway-0', 'meshgate-gateway-acme-0123456789ab');
    const [ta, tb, tc] = [token(), token(), token()];
    await Promise.all([a.board.publish(ta, `${ta}.x`), b.board.publish(tb, `${tb}.y`), elsewhere.board.publish(tc, `${tc}.z`)]);
    assert.deepEqual(stored(), [ta, tb, tc].sort(), 'read, change, write at the version read: no token lost');
    // gateway-a died mid-order; gateway-b takes the Lease over.
    assert.equal(await b.board.withdrawLeftovers(), 1);
    assert.deepEqual(stored(), [tb, tc].sort(), 'its own token and another gateway\'s stay');
    await Promise.all([b.board.withdraw(tb), elsewhere.board.withdraw(tc)]);
    assert.deepEqual(stored(), []);
  });

  it('answers nobody withdrew expire at the next write', async () => {
    let now = Date.now();
    const a = await replica('gateway-a', LEASE, { now: () => now, maxAgeMs: 60_000 });
    const old = token();
    await a.board.publish(old, `${old}.x`);
    now += 61_000;
    const fresh = token();
    await a.board.publish(fresh, `${fresh}.x`);
    assert.deepEqual(stored(), [fresh]);
    await a.board.withdraw(fresh);
  });
});

describe('HTTP-01 answers in a Secret: the orderer under load, the API server gone', () => {
  it('one orderer publishing many tokens at once loses none and gives up on none (its own writes do not conflict)', async () => {
    const api = await startKubeApi();
    const client = api.clientKubeconfig();
    const secrets = new KubeSecrets({ kubeconfig: client.kubeconfig, namespace: 'istio-system', logger, debounceMs: 5 });
    try {
      const board = new SecretChallenges({ secrets, identity: 'gateway-a', lease: LEASE, logger });
      const tokens = Array.from({ length: 12 }, () => token());
      const results = await Promise.allSettled(tokens.map((t) => board.publish(t, `${t}.x`)));
      assert.deepEqual(results.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason)), []);
      assert.deepEqual(Object.keys(api.get('v1', 'Secret', 'istio-system', CHALLENGE_SECRET)?.data ?? {}).sort(), [...tokens].sort());
    } finally {
      await secrets.close();
      await api.close();
    }
  });

  it('an API server that accepts and never answers: a miss is answered 404, not held until the request times out', { timeout: 20_000 }, async () => {
    const gate = await startTcpGate();
    gate.hold();
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'c', server: `http://127.0.0.1:${gate.port}`, skipTLSVerify: true }],
      users: [{ name: 'u', token: 't' }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
      currentContext: 'x',
    });
    const secrets = new KubeSecrets({ kubeconfig: kc, namespace: 'istio-system', logger });
    try {
      const board = new SecretChallenges({ secrets, identity: 'gateway-b', lease: LEASE, logger, rereadTimeoutMs: 300 });
      assert.equal(await board.answer(token()), undefined);
      assert.equal(await board.answer(token()), undefined, 'the next miss is not queued behind a read that never ends');
    } finally {
      await secrets.close();
      gate.cut();
      await gate.close();
    }
  });
});
