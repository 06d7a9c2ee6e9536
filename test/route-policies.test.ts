// Unit tables for the per-route policies: how retries, timeouts, faults, mirrors and CORS compile
// from VirtualService YAML (docs/reference/routing.md), and the request-path decisions made from them (fault
// draws, CORS answers, the mirrored host) with a seeded random source.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { compileValid, lookup } from './helpers/route-table.js';
import { seededRandom } from './helpers/random.js';
import type { ForwardAction, RouteAction } from '../src/core/routing/types.js';
import { decideFault } from '../src/core/proxy/fault.js';
import { evaluateCors } from '../src/core/proxy/cors.js';

const BASE = `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ['*']}]
---
apiVersion: v1
kind: Service
metadata: {name: svc, namespace: default}
spec: {ports: [{name: http, port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: shadow, namespace: default}
spec: {ports: [{name: http, port: 80}]}
`;

/** Compiles one http route (YAML lines under `- `, indented two spaces) and returns its action. */
function actionOf(routeYaml: string, extra = ''): RouteAction {
  const snap = compileValid(`${BASE}${extra}---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: vs, namespace: default}
spec:
  hosts: [a.example.com]
  gateways: [gw]
  http:
  - ${routeYaml.trim().split('\n').join('\n    ')}
`);
  const r = lookup(snap, { host: 'a.example.com' });
  assert.equal(r.status, 'route');
  if (r.status !== 'route') throw new Error('no route');
  return r.route.action;
}

function forwardOf(routeYaml: string, extra = ''): ForwardAction {
  const a = actionOf(routeYaml, extra);
  assert.equal(a.kind, 'forward');
  return a as ForwardAction;
}

const ROUTE = 'route: [{destination: {host: svc}}]';

describe('retries and timeouts compile as Istio converts them', () => {
  it('no retries: 2 attempts on connect-failure, refused-stream, unavailable, cancelled; 5xx not retried; no timeouts', () => {
    const a = forwardOf(ROUTE);
    assert.equal(a.timeoutMs, 0);
    assert.equal(a.retry.attempts, 2);
    assert.equal(a.retry.perTryTimeoutMs, 0);
    assert.deepEqual([...a.retry.on].sort(), ['cancelled', 'connect-failure', 'refused-stream', 'retriable-status-codes', 'unavailable']);
    assert.equal(a.retry.on.has('5xx'), false);
    assert.deepEqual([...a.retry.grpcStatuses].sort((x, y) => x - y), [1, 14]);
    assert.equal(a.retry.backoffBaseMs, 25);
    assert.equal(a.retry.avoidPreviousHosts, true);
  });

  it('attempts: 0 turns retries off', () => {
    assert.equal(forwardOf(`retries: {attempts: 0}\n${ROUTE}`).retry.attempts, 0);
  });

  it('bare status codes become retriable status codes', () => {
    const r = forwardOf(`retries: {attempts: 3, retryOn: "503,connect-failure", perTryTimeout: 250ms}\n${ROUTE}`).retry;
    assert.equal(r.attempts, 3);
    assert.equal(r.perTryTimeoutMs, 250);
    assert.deepEqual([...r.on].sort(), ['connect-failure', 'retriable-status-codes']);
    assert.deepEqual([...r.statusCodes], [503]);
  });

  it('attempts without retryOn use the default conditions', () => {
    const r = forwardOf(`retries: {attempts: 4}\n${ROUTE}`).retry;
    assert.equal(r.attempts, 4);
    assert.ok(r.on.has('connect-failure') && !r.on.has('5xx'));
  });

  it('retryIgnorePreviousHosts: false lets a retry reuse an endpoint', () => {
    assert.equal(forwardOf(`retries: {attempts: 1, retryIgnorePreviousHosts: false}\n${ROUTE}`).retry.avoidPreviousHosts, false);
  });

  it('a lone destination with consistent hashing keeps retries on the hashed host unless told otherwise', () => {
    const hashed = `---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: svc, namespace: default}
spec:
  host: svc
  trafficPolicy: {loadBalancer: {consistentHash: {httpHeaderName: x-user}}}
`;
    assert.equal(forwardOf(ROUTE, hashed).retry.avoidPreviousHosts, false, 'default policy');
    assert.equal(forwardOf(`retries: {attempts: 3}\n${ROUTE}`, hashed).retry.avoidPreviousHosts, false);
    assert.equal(forwardOf(`retries: {attempts: 3, retryIgnorePreviousHosts: true}\n${ROUTE}`, hashed).retry.avoidPreviousHosts, true);
    // Istio only looks at the hash of a route with exactly one destination.
    const split = 'route: [{destination: {host: svc}, weight: 50}, {destination: {host: shadow}, weight: 50}]';
    assert.equal(forwardOf(split, hashed).retry.avoidPreviousHosts, true);
  });

  it('timeout in milliseconds', () => {
    assert.equal(forwardOf(`timeout: 1.5s\n${ROUTE}`).timeoutMs, 1500);
  });
});

describe('fault injection compiles with Istio defaults', () => {
  it('percentages become per-million chances', () => {
    const a = forwardOf(`fault: {delay: {fixedDelay: 2s, percentage: {value: 12.5}}, abort: {httpStatus: 418, percentage: {value: 0.0001}}}\n${ROUTE}`);
    assert.deepEqual(a.fault, { delay: { ms: 2000, chance: 125_000 }, abort: { chance: 1, httpStatus: 418 } });
  });

  it('no percentage never fires, so nothing is compiled', () => {
    assert.equal(forwardOf(`fault: {abort: {httpStatus: 503}}\n${ROUTE}`).fault, undefined);
    assert.equal(forwardOf(`fault: {delay: {fixedDelay: 1s}}\n${ROUTE}`).fault, undefined);
  });

  it('the deprecated whole-number delay percent still counts', () => {
    assert.deepEqual(forwardOf(`fault: {delay: {fixedDelay: 10ms, percent: 30}}\n${ROUTE}`).fault, { delay: { ms: 10, chance: 300_000 } });
  });

  it('grpcStatus names become codes', () => {
    assert.deepEqual(forwardOf(`fault: {abort: {grpcStatus: UNAVAILABLE, percentage: {value: 100}}}\n${ROUTE}`).fault?.abort, { chance: 1_000_000, httpStatus: 200, grpcStatus: 14 });
  });
});

describe('mirrors compile with 100 % as the default', () => {
  it('mirror without a percentage mirrors everything, to the shadow cluster', () => {
    const [m, ...rest] = forwardOf(`mirror: {host: shadow}\n${ROUTE}`).mirrors;
    assert.equal(rest.length, 0);
    assert.equal(m?.clusterName, 'outbound|80||shadow.default.svc.cluster.local');
    assert.equal(m?.chance, 1_000_000);
    assert.ok(m?.cluster);
  });

  it('mirrorPercentage, the deprecated mirrorPercent, and an explicit 0', () => {
    assert.equal(forwardOf(`mirror: {host: shadow}\nmirrorPercentage: {value: 25}\n${ROUTE}`).mirrors[0]?.chance, 250_000);
    assert.equal(forwardOf(`mirror: {host: shadow}\nmirrorPercent: 40\n${ROUTE}`).mirrors[0]?.chance, 400_000);
    assert.equal(forwardOf(`mirror: {host: shadow}\nmirrorPercentage: {value: 0}\n${ROUTE}`).mirrors.length, 0);
  });

  it('mirrors[] each with its own percentage', () => {
    const ms = forwardOf(`mirrors: [{destination: {host: shadow}}, {destination: {host: svc}, percentage: {value: 5}}]\n${ROUTE}`).mirrors;
    assert.deepEqual(ms.map((m) => [m.host, m.chance]), [['shadow.default.svc.cluster.local', 1_000_000], ['svc.default.svc.cluster.local', 50_000]]);
  });

  it('no mirror: none', () => assert.deepEqual(forwardOf(ROUTE).mirrors, []));
});

describe('fault draws follow the configured percentage (seeded)', () => {
  const rate = (fault: NonNullable<ForwardAction['fault']>, n: number, seed: number): { delays: number; aborts: number } => {
    const random = seededRandom(seed);
    let delays = 0;
    let aborts = 0;
    for (let i = 0; i < n; i++) {
      const d = decideFault(fault, random, {});
      if (d?.delayMs !== undefined) delays++;
      if (d?.abort) aborts++;
    }
    return { delays, aborts };
  };

  it('a 30 % abort and a 10 % delay over 2000 requests land within ±3 %', () => {
    const { delays, aborts } = rate({ delay: { ms: 1, chance: 100_000 }, abort: { chance: 300_000, httpStatus: 503 } }, 2000, 7);
    assert.ok(Math.abs(aborts / 2000 - 0.3) <= 0.03, `aborts ${aborts}`);
    assert.ok(Math.abs(delays / 2000 - 0.1) <= 0.03, `delays ${delays}`);
  });

  it('100 % always fires and draws no random number', () => {
    const random = (): number => assert.fail('no draw expected');
    const d = decideFault({ abort: { chance: 1_000_000, httpStatus: 418 } }, random, {});
    assert.equal(d?.abort?.status, 418);
    assert.equal(d?.abort?.flag, 'FI');
    assert.equal(d?.abort?.body, 'fault filter abort');
  });

  it('a gRPC abort answers a gRPC request with HTTP 200 and grpc-status', () => {
    const d = decideFault({ abort: { chance: 1_000_000, httpStatus: 200, grpcStatus: 14 } }, Math.random, { 'content-type': 'application/grpc' });
    assert.equal(d?.abort?.status, 200);
    assert.equal(d?.abort?.headers?.['grpc-status'], '14');
  });
});

describe('CORS decisions', () => {
  const action = actionOf(`corsPolicy:
  allowOrigins: [{exact: "https://app.example.com"}, {regex: "https://.*\\\\.trusted\\\\.com"}]
  allowMethods: [GET, POST]
  allowHeaders: [x-custom, content-type]
  exposeHeaders: [x-total]
  maxAge: 24h
  allowCredentials: true
${ROUTE}`);
  const cors = action.cors!;
  const preflight = (origin: string) => ({ origin, 'access-control-request-method': 'POST' });

  it('compiles joined lists and maxAge in seconds', () => {
    assert.equal(cors.allowMethods, 'GET,POST');
    assert.equal(cors.allowHeaders, 'x-custom,content-type');
    assert.equal(cors.exposeHeaders, 'x-total');
    assert.equal(cors.maxAge, '86400');
    assert.equal(cors.forwardUnmatchedPreflights, true);
  });

  it('answers an allowed preflight', () => {
    assert.deepEqual(evaluateCors(cors, 'OPTIONS', preflight('https://x.trusted.com')), {
      kind: 'preflight',
      headers: {
        'access-control-allow-origin': 'https://x.trusted.com',
        'access-control-allow-credentials': 'true',
        'access-control-allow-methods': 'GET,POST',
        'access-control-allow-headers': 'x-custom,content-type',
        'access-control-max-age': '86400',
      },
    });
  });

  it('adds the origin, credentials and exposed headers to an actual request', () => {
    assert.deepEqual(evaluateCors(cors, 'GET', { origin: 'https://app.example.com' }), {
      kind: 'actual',
      headers: { 'access-control-allow-origin': 'https://app.example.com', 'access-control-allow-credentials': 'true', 'access-control-expose-headers': 'x-total' },
    });
  });

  it('says nothing without Origin, for an origin not allowed, or an OPTIONS that is not a preflight', () => {
    assert.equal(evaluateCors(cors, 'GET', {}), undefined);
    assert.equal(evaluateCors(cors, 'GET', { origin: 'https://evil.com' }), undefined);
    assert.equal(evaluateCors(cors, 'OPTIONS', preflight('https://evil.com')), undefined); // FORWARD
    assert.equal(evaluateCors(cors, 'OPTIONS', { origin: 'https://app.example.com' })?.kind, 'actual');
  });

  it('unmatchedPreflights: IGNORE answers an unmatched preflight without CORS headers', () => {
    const ignore = actionOf(`corsPolicy: {allowOrigins: [{exact: "https://a.com"}], unmatchedPreflights: IGNORE}\n${ROUTE}`).cors!;
    assert.deepEqual(evaluateCors(ignore, 'OPTIONS', preflight('https://b.com')), { kind: 'ignore' });
  });

  it('a legacy allowOrigin of * allows any origin, echoing it', () => {
    const any = actionOf(`corsPolicy: {allowOrigin: ["*"]}\n${ROUTE}`).cors!;
    assert.deepEqual(evaluateCors(any, 'GET', { origin: 'https://whoever.org' }), { kind: 'actual', headers: { 'access-control-allow-origin': 'https://whoever.org' } });
  });

  it('applies to direct responses too', () => {
    assert.ok(actionOf('corsPolicy: {allowOrigins: [{prefix: "https://"}]}\ndirectResponse: {status: 204}').cors);
  });
});

