// Validation of the resilience blocks of a DestinationRule (connectionPool, outlierDetection,
// localityLbSetting): each bad value is reported with its file, line and field, and a rule with
// errors is left out of the snapshot while good ones still apply.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfigText } from '../src/core/config/load.js';
import { formatProblem, type Problem } from '../src/core/config/problem.js';
import { validateResource } from '../src/core/config/validate.js';

function problemsOf(yaml: string): Problem[] {
  const { resources, problems } = parseConfigText(yaml, 'rules/reviews.yaml');
  assert.deepEqual(problems, []);
  return resources.flatMap((r) => validateResource(r));
}

const RULE = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: shop}
spec:
  host: reviews
  trafficPolicy:
    connectionPool:
      tcp:
        maxConnections: -1
        connectTimeout: soon
      http:
        http1MaxPendingRequests: -3
        http2MaxRequests: 1.5
        maxRetries: -2
    outlierDetection:
      consecutive5xxErrors: -1
      consecutiveGatewayErrors: -4
      maxEjectionPercent: 120
      minHealthPercent: 101
      baseEjectionTime: -30s
    loadBalancer:
      localityLbSetting:
        distribute:
        - from: region-a/zone-1/*
          to: {"region-a/zone-1/*": 70, "region-b/*": 20}
        failover:
        - {from: region-a, to: region-b}
`;

describe('DestinationRule resilience validation', () => {
  const problems = problemsOf(RULE);
  const expected: Array<[number, string, string]> = [
    [9, 'spec.trafficPolicy.connectionPool.tcp.maxConnections', 'must not be negative'],
    [10, 'spec.trafficPolicy.connectionPool.tcp.connectTimeout', 'not a duration'],
    [12, 'spec.trafficPolicy.connectionPool.http.http1MaxPendingRequests', 'must not be negative'],
    [13, 'spec.trafficPolicy.connectionPool.http.http2MaxRequests', 'whole number'],
    [14, 'spec.trafficPolicy.connectionPool.http.maxRetries', 'must not be negative'],
    [16, 'spec.trafficPolicy.outlierDetection.consecutive5xxErrors', 'must not be negative'],
    [17, 'spec.trafficPolicy.outlierDetection.consecutiveGatewayErrors', 'must not be negative'],
    [18, 'spec.trafficPolicy.outlierDetection.maxEjectionPercent', 'at most 100'],
    [19, 'spec.trafficPolicy.outlierDetection.minHealthPercent', 'at most 100'],
    [20, 'spec.trafficPolicy.outlierDetection.baseEjectionTime', 'negative'],
    [25, 'spec.trafficPolicy.loadBalancer.localityLbSetting.distribute[0].to', 'add up to 90'],
    [27, 'spec.trafficPolicy.loadBalancer.localityLbSetting.failover', 'only one of distribute, failover'],
  ];
  for (const [line, field, message] of expected) {
    it(`${field}: ${message}`, () => {
      const hit = problems.find((p) => p.field === field && p.message.includes(message));
      assert.ok(hit, `not found among:\n${problems.map(formatProblem).join('\n')}`);
      assert.equal(hit.severity, 'error');
      assert.equal(hit.file, 'rules/reviews.yaml');
      assert.equal(hit.line, line);
      assert.equal(hit.resource, 'DestinationRule shop/reviews');
    });
  }

  it('nothing else is reported', () => {
    assert.equal(problems.filter((p) => p.severity === 'error').length, expected.length, problems.map(formatProblem).join('\n'));
  });

  it('good values pass', () => {
    const good = problemsOf(`apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: shop}
spec:
  host: reviews
  trafficPolicy:
    connectionPool:
      tcp: {maxConnections: 100, connectTimeout: 30ms}
      http: {http1MaxPendingRequests: 10, http2MaxRequests: 1000, maxRequestsPerConnection: 10, maxRetries: 3, idleTimeout: 30s}
    outlierDetection: {consecutive5xxErrors: 7, consecutiveGatewayErrors: 3, interval: 5m, baseEjectionTime: 15m, maxEjectionPercent: 100, minHealthPercent: 30}
    loadBalancer:
      localityLbSetting:
        distribute:
        - from: region-a/zone-1/*
          to: {"region-a/zone-1/*": 80, "region-b/*": 20}
`);
    assert.deepEqual(good, []);
  });
});
