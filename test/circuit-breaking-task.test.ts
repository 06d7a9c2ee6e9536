// Istio's "Circuit Breaking" task, its DestinationRule unchanged
// (test/fixtures/istio-tasks/circuit-breaking/): maxConnections 1, http1MaxPendingRequests 1,
// maxRequestsPerConnection 1 and outlier detection on httpbin, and fortio in a client pod (sleep's
// sidecar here) loading http://httpbin:8000/get:
// - one call (`fortio load -curl`) is 200;
// - `-c 2 -n 20` and `-c 3 -n 30`: every answer is 200 or the sidecar's 503 overflow (flag UO),
//   none a 503 UH: an overflow is no upstream failure, so outlier detection ejects nobody;
// - `pilot-agent request GET stats | grep httpbin | grep pending` reads Envoy's names on the client
//   sidecar's admin /stats, and upstream_rq_pending_overflow counts exactly the 503s fortio saw;
// - the limits as the task explains them: with one request on the connection and one waiting, a
//   third is turned away at once (503 UO, `x-envoy-overloaded: true`) while both others are answered.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { request } from 'undici';
import { eventually } from './helpers/gateway.js';
import { fortioLoad, type FortioResult } from './helpers/fortio.js';
import { scrapeSamples } from './helpers/prometheus-text.js';
import { repoPath } from './helpers/route-table.js';
import { startTaskMesh, type TaskMesh } from './helpers/task-mesh.js';

const URL_GET = 'http://httpbin:8000/get';
const OVERFLOW = 'upstream connect error or disconnect/reset before headers. reset reason: overflow';
const CLUSTER = 'cluster.outbound|8000||httpbin.default.svc.cluster.local';

describe('Circuit Breaking (httpbin, fortio)', () => {
  let mesh: TaskMesh;
  let overflowsSeen = 0;
  const fortio = () => mesh.sleepSidecars.get('default')!;
  /** `pilot-agent request GET stats | grep httpbin | grep pending` on fortio's sidecar, as name → value. */
  const pendingStats = async (): Promise<Map<string, number>> => {
    const r = await request(`http://127.0.0.1:${fortio().adminPort}/stats`);
    assert.equal(r.statusCode, 200);
    const lines = (await r.body.text()).split('\n').filter((l) => l.includes('httpbin') && l.includes('pending'));
    return new Map(lines.map((l) => [l.slice(0, l.lastIndexOf(':')), Number(l.slice(l.lastIndexOf(':') + 1))]));
  };
  const stat = async (name: string): Promise<number> => {
    const r = await request(`http://127.0.0.1:${fortio().adminPort}/stats?filter=${encodeURIComponent(`^${name.replace(/[|.]/g, '\\$&')}$`)}`);
    const [line] = (await r.body.text()).split('\n');
    return Number(line?.slice(line.lastIndexOf(':') + 1));
  };
  /** fortio's summary holds only 200s and the sidecar's overflow 503s. */
  const onlyOverflows = (r: FortioResult): void => {
    assert.deepEqual([...r.codes.keys()].filter((c) => c !== 200 && c !== 503), [], JSON.stringify([...r.codes]));
    for (const body of r.failures) assert.equal(body, OVERFLOW);
    overflowsSeen += r.codes.get(503) ?? 0;
  };

  before(async () => {
    mesh = await startTaskMesh(['default'], [], (workload) => (workload === 'sleep' ? { metricsPort: 0 } : {}));
    await mesh.apply('destination-rule.yaml', await readFile(repoPath('test/fixtures/istio-tasks/circuit-breaking/destination-rule.yaml'), 'utf8'));
  });
  after(async () => {
    await mesh?.close();
  });

  it('fortio load -curl: one call is 200 with httpbin\'s /get', async () => {
    const r = await mesh.curl('default', URL_GET);
    assert.equal(r.status, 200);
    assert.equal((JSON.parse(r.text) as { url: string }).url, URL_GET);
  });

  it('fortio -c 2 -n 20, then -c 3 -n 30: 200s and 503 overflows, nothing else', async () => {
    const two = await fortioLoad(fortio().outboundPort, URL_GET, { connections: 2, requests: 20 });
    onlyOverflows(two);
    assert.ok((two.codes.get(200) ?? 0) > 0);
    const three = await fortioLoad(fortio().outboundPort, URL_GET, { connections: 3, requests: 30 });
    onlyOverflows(three);
    assert.ok((three.codes.get(200) ?? 0) > 0);
  });

  it('the stats the task greps: Envoy\'s names, and upstream_rq_pending_overflow counts every 503', async () => {
    const stats = await pendingStats();
    assert.deepEqual(
      [...stats.keys()],
      [
        `${CLUSTER}.circuit_breakers.default.remaining_pending`,
        `${CLUSTER}.circuit_breakers.default.rq_pending_open`,
        `${CLUSTER}.circuit_breakers.high.rq_pending_open`,
        `${CLUSTER}.upstream_rq_pending_active`,
        `${CLUSTER}.upstream_rq_pending_failure_eject`,
        `${CLUSTER}.upstream_rq_pending_overflow`,
        `${CLUSTER}.upstream_rq_pending_total`,
      ],
    );
    assert.equal(stats.get(`${CLUSTER}.upstream_rq_pending_overflow`), overflowsSeen);
    assert.equal(stats.get(`${CLUSTER}.upstream_rq_pending_active`), 0);
    assert.equal(stats.get(`${CLUSTER}.circuit_breakers.default.remaining_pending`), 1);
    assert.equal(stats.get(`${CLUSTER}.circuit_breakers.default.rq_pending_open`), 0);
    // The same 503s in fortio's sidecar's metrics, flag UO; outlier detection ejected nobody (no UH).
    const calls = (await scrapeSamples(fortio().metricsPort, 'istio_requests_total')).filter((s) => s.labels['reporter'] === 'source' && s.labels['destination_service_name'] === 'httpbin');
    const by = (code: string, flags: string): number => calls.filter((s) => s.labels['response_code'] === code && s.labels['response_flags'] === flags).reduce((n, s) => n + s.value, 0);
    assert.equal(by('503', 'UO'), overflowsSeen);
    assert.equal(by('503', 'UH'), 0);
    assert.equal(by('200', '-'), 1 + 50 - overflowsSeen);
  });

  it('one request on the connection and one waiting: a third is 503 UO at once, the others are answered', async () => {
    const overflowBefore = await stat(`${CLUSTER}.upstream_rq_pending_overflow`);
    const first = mesh.curl('default', 'http://httpbin:8000/delay/1');
    await eventually(async () => (await stat(`${CLUSTER}.circuit_breakers.default.cx_open`)) === 1);
    const second = mesh.curl('default', URL_GET);
    await eventually(async () => (await stat(`${CLUSTER}.upstream_rq_pending_active`)) === 1);
    assert.equal(await stat(`${CLUSTER}.circuit_breakers.default.rq_pending_open`), 1);
    assert.equal(await stat(`${CLUSTER}.circuit_breakers.default.remaining_pending`), 0);
    const third = await mesh.curl('default', URL_GET);
    assert.equal(third.status, 503);
    assert.equal(third.text, OVERFLOW);
    assert.equal(third.headers['x-envoy-overloaded'], 'true');
    assert.equal(await stat(`${CLUSTER}.upstream_rq_pending_overflow`), overflowBefore + 1);
    assert.equal((await first).status, 200);
    assert.equal((await second).status, 200);
  });
});
