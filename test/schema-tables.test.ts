// Istio's schema and webhook, one table per kind: documents Istio accepts must validate with no
// error, and documents Istio refuses must be refused at the field Istio names. The values come from
// the CRDs' types and ranges (int32/uint32, enums, minimum/maximum) and the webhook's rules
// (durations ≥ 1ms, ports 1–65535, percentages 0–100, host syntax), so the two cannot drift apart.
// Also: strict unknown fields with a suggestion, duplicates, and YAML read as Kubernetes reads it.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfigText } from '../src/core/config/load.js';
import { validateAll } from '../src/core/config/validate.js';
import { setAllowUnknownFields } from '../src/core/config/field-policy.js';
import { problemsOf, schemaDoc as doc, table } from './helpers/schema-table.js';

const HTTP_SERVER = 'servers:\n- port: {number: 80, name: http, protocol: HTTP}\n  hosts: ["*"]';
const TLS = (tls: string) => `servers:\n- port: {number: 443, name: https, protocol: HTTPS}\n  hosts: [a.example.com]\n  tls: ${tls}`;

table('Gateway', 'Gateway', [
  ['a plain HTTP server', HTTP_SERVER],
  ['a selector and namespaced hosts', 'selector: {istio: ingressgateway}\nservers:\n- port: {number: 80, name: http, protocol: HTTP}\n  hosts: ["./a.example.com", "ns1/*.example.com"]'],
  ['upper-case host names (Istio checks labels with A-Z allowed)', 'servers:\n- port: {number: 80, name: http, protocol: HTTP}\n  hosts: [Bookinfo.Example.COM]'],
  ['port 65535', 'servers:\n- port: {number: 65535, name: http, protocol: HTTP}\n  hosts: ["*"]'],
  ['SIMPLE TLS with a credentialName', TLS('{mode: SIMPLE, credentialName: a-cert}')],
  ['MUTUAL TLS with a credentialName', TLS('{mode: MUTUAL, credentialName: a-cert}')],
  ['PASSTHROUGH', 'servers:\n- port: {number: 443, name: tls, protocol: TLS}\n  hosts: [a.example.com]\n  tls: {mode: PASSTHROUGH}'],
  ['TLS versions', TLS('{mode: SIMPLE, credentialName: a, minProtocolVersion: TLSV1_2, maxProtocolVersion: TLSV1_3}')],
  ['httpsRedirect', 'servers:\n- port: {number: 80, name: http, protocol: HTTP}\n  hosts: ["*"]\n  tls: {httpsRedirect: true}'],
  ['no servers', 'servers: []', 'spec.servers', 'at least one'],
  ['port 0', 'servers:\n- port: {number: 0, name: http, protocol: HTTP}\n  hosts: ["*"]', 'spec.servers[0].port.number', ''],
  ['port 65536', 'servers:\n- port: {number: 65536, name: http, protocol: HTTP}\n  hosts: ["*"]', 'spec.servers[0].port.number', 'at most 65535'],
  ['a server without hosts', 'servers:\n- port: {number: 80, name: http, protocol: HTTP}', 'spec.servers[0].hosts', ''],
  ['an unknown TLS mode', TLS('{mode: STRICT, credentialName: a}'), 'spec.servers[0].tls.mode', 'is not allowed'],
  ['an unknown TLS version', TLS('{mode: SIMPLE, credentialName: a, minProtocolVersion: TLSV2}'), 'spec.servers[0].tls.minProtocolVersion', 'is not allowed'],
  ['a misspelt field, with the close name', 'servers:\n- port: {number: 80, name: http, protocol: HTTP}\n  host: ["*"]', 'spec.servers[0].host', 'did you mean `hosts`?'],
]);

const ROUTE = (extra = '') => `hosts: [reviews]\nhttp:\n- route:\n  - destination: {host: reviews}\n${extra}`;

table('VirtualService', 'VirtualService', [
  ['a route', ROUTE()],
  ['gateways with mesh', `gateways: [mesh, istio-system/gw]\n${ROUTE()}`],
  ['upper-case hosts', 'hosts: [Reviews.Example.com]\nhttp:\n- route:\n  - destination: {host: Reviews.Example.com}'],
  ['weights 0 and 100', 'hosts: [r]\nhttp:\n- route:\n  - destination: {host: a}\n    weight: 100\n  - destination: {host: b}\n    weight: 0'],
  ['retries', ROUTE('  retries: {attempts: 3, perTryTimeout: 2s, retryOn: "5xx,connect-failure"}')],
  ['zero retries', ROUTE('  retries: {attempts: 0}')],
  ['a timeout', ROUTE('  timeout: 1.5s')],
  ['a fault with percentage 100', ROUTE('  fault: {abort: {httpStatus: 503, percentage: {value: 100}}}')],
  ['a fault delay', ROUTE('  fault: {delay: {fixedDelay: 5s, percentage: {value: 0.5}}}')],
  ['a mirror with mirrorPercentage', ROUTE('  mirror: {host: b}\n  mirrorPercentage: {value: 50}')],
  ['a match on uri, headers, queryParams, method', 'hosts: [r]\nhttp:\n- match:\n  - uri: {prefix: /a}\n    headers: {x: {exact: "1"}}\n    queryParams: {q: {regex: "^a"}}\n    method: {exact: GET}\n  route:\n  - destination: {host: r}'],
  ['a redirect', 'hosts: [r]\nhttp:\n- redirect: {uri: /b, redirectCode: 308}'],
  ['a directResponse', 'hosts: [r]\nhttp:\n- directResponse: {status: 200, body: {string: ok}}'],
  ['headers manipulation', ROUTE('  headers: {request: {set: {x: "1"}, add: {y: "2"}, remove: [z]}}')],
  ['cors', ROUTE('  corsPolicy: {allowOrigins: [{exact: "https://a.com"}], allowMethods: [GET], maxAge: 24h}')],
  ['no hosts (a delegate, which Istio accepts)', 'http:\n- route:\n  - destination: {host: r}'],
  ['a negative weight', 'hosts: [r]\nhttp:\n- route:\n  - destination: {host: a}\n    weight: -1', 'spec.http[0].route[0].weight', 'negative'],
  ['negative retries', ROUTE('  retries: {attempts: -1}'), 'spec.http[0].retries.attempts', 'negative'],
  ['a timeout under 1ms', ROUTE('  timeout: 0.5ms'), 'spec.http[0].timeout', 'at least 1ms'],
  ['a timeout that is not a duration', ROUTE('  timeout: 5'), 'spec.http[0].timeout', 'duration'],
  ['fault percentage over 100', ROUTE('  fault: {abort: {httpStatus: 503, percentage: {value: 101}}}'), 'spec.http[0].fault.abort.percentage.value', 'between 0 and 100'],
  ['a port 0 destination', 'hosts: [r]\nhttp:\n- route:\n  - destination: {host: r, port: {number: 0}}', 'spec.http[0].route[0].destination.port.number', ''],
  ['a destination without host', 'hosts: [r]\nhttp:\n- route:\n  - destination: {subset: v1}', 'spec.http[0].route[0].destination.host', ''],
  ['`gatways:` (a typo that would make the route mesh-only)', `gatways: [gw]\n${ROUTE()}`, 'spec.gatways', 'did you mean `gateways`?'],
]);

const DR = (policy: string) => `host: reviews\ntrafficPolicy:\n  ${policy}`;

table('DestinationRule', 'DestinationRule', [
  ['subsets', 'host: reviews\nsubsets:\n- name: v1\n  labels: {version: v1}'],
  ['warmup with minimumPercent and aggression as numbers (DoubleValue)', DR('loadBalancer: {simple: ROUND_ROBIN, warmup: {duration: 60s, minimumPercent: 10, aggression: 1.5}}')],
  ['warmupDurationSecs', DR('loadBalancer: {simple: LEAST_REQUEST, warmupDurationSecs: 30s}')],
  ['consistent hash', DR('loadBalancer: {consistentHash: {httpHeaderName: x-user}}')],
  ['connection pool limits', DR('connectionPool: {tcp: {maxConnections: 100, connectTimeout: 30ms}, http: {http1MaxPendingRequests: 1, http2MaxRequests: 10, maxRetries: 3}}')],
  ['outlier detection at the limits', DR('outlierDetection: {consecutive5xxErrors: 0, interval: 1s, baseEjectionTime: 30s, maxEjectionPercent: 100, minHealthPercent: 0}')],
  ['ISTIO_MUTUAL', DR('tls: {mode: ISTIO_MUTUAL}')],
  ['portLevelSettings', 'host: reviews\ntrafficPolicy:\n  portLevelSettings:\n  - port: {number: 9080}\n    loadBalancer: {simple: RANDOM}'],
  ['aggression 0 (Istio wants more than 0)', DR('loadBalancer: {warmup: {duration: 60s, aggression: 0}}'), 'spec.trafficPolicy.loadBalancer.warmup.aggression', 'greater than 0'],
  ['minimumPercent over 100', DR('loadBalancer: {warmup: {duration: 60s, minimumPercent: 101}}'), 'spec.trafficPolicy.loadBalancer.warmup.minimumPercent', 'between 0 and 100'],
  ['minimumPercent as a mapping (not Istio\'s type)', DR('loadBalancer: {warmup: {duration: 60s, minimumPercent: {value: 10}}}'), 'spec.trafficPolicy.loadBalancer.warmup.minimumPercent', 'must be a number'],
  ['maxEjectionPercent over 100', DR('outlierDetection: {maxEjectionPercent: 101}'), 'spec.trafficPolicy.outlierDetection.maxEjectionPercent', ''],
  ['an unknown load balancer', DR('loadBalancer: {simple: FASTEST}'), 'spec.trafficPolicy.loadBalancer.simple', 'is not allowed'],
  ['an unknown TLS mode', DR('tls: {mode: STRICT}'), 'spec.trafficPolicy.tls.mode', 'is not allowed'],
  ['a subset without name', 'host: reviews\nsubsets:\n- labels: {version: v1}', 'spec.subsets[0].name', ''],
  ['no host', 'subsets:\n- name: v1', 'spec.host', ''],
]);

table('ServiceEntry', 'ServiceEntry', [
  ['an external host', 'hosts: [api.example.com]\nports: [{number: 443, name: https, protocol: TLS}]\nresolution: DNS\nlocation: MESH_EXTERNAL'],
  ['addresses with IPv6 written the way Kubernetes reads it', 'hosts: [db.example.com]\naddresses: [1.2.3.4, 001:db8::]\nports: [{number: 5432, name: tcp, protocol: TCP}]\nresolution: STATIC\nendpoints: [{address: 1.2.3.4}]'],
  ['upper-case hosts', 'hosts: [API.Example.com]\nports: [{number: 80, name: http, protocol: HTTP}]\nresolution: DNS'],
  ['an unknown resolution', 'hosts: [a.example.com]\nports: [{number: 80, name: http, protocol: HTTP}]\nresolution: MAGIC', 'spec.resolution', 'is not allowed'],
  ['a port 70000', 'hosts: [a.example.com]\nports: [{number: 70000, name: http, protocol: HTTP}]\nresolution: DNS', 'spec.ports[0].number', 'at most 65535'],
  ['no hosts', 'ports: [{number: 80, name: http, protocol: HTTP}]\nresolution: DNS', 'spec.hosts', ''],
]);

table('WorkloadEntry', 'WorkloadEntry', [
  ['an address with labels', 'address: 10.0.0.1\nlabels: {app: a}\nports: {http: 8080}'],
  ['a port over 65535', 'address: 10.0.0.1\nports: {http: 70000}', 'spec.ports.http', ''],
]);

table('PeerAuthentication', 'PeerAuthentication', [
  ['STRICT', 'mtls: {mode: STRICT}'],
  ['port-level PERMISSIVE with a selector', 'selector: {matchLabels: {app: a}}\nmtls: {mode: STRICT}\nportLevelMtls:\n  8080: {mode: PERMISSIVE}'],
  ['an unknown mode', 'mtls: {mode: ON}', 'spec.mtls.mode', 'is not allowed'],
  ['a misspelt field', 'mtl: {mode: STRICT}', 'spec.mtl', 'did you mean `mtls`?'],
]);

table('AuthorizationPolicy', 'AuthorizationPolicy', [
  ['ALLOW with sources and operations', 'action: ALLOW\nrules:\n- from: [{source: {principals: [cluster.local/ns/a/sa/b]}}]\n  to: [{operation: {methods: [GET], paths: [/api/*]}}]'],
  ['source.notTrustDomains', 'rules:\n- from: [{source: {notTrustDomains: [other.local]}}]'],
  ['an empty rule (allow all)', 'rules:\n- {}'],
  ['DENY with a when condition', 'action: DENY\nrules:\n- when: [{key: "request.headers[x-block]", values: ["1"]}]'],
  ['DENY without rules', 'action: DENY', 'spec.rules', 'never triggers'],
  ['an unknown action', 'action: BLOCK\nrules:\n- {}', 'spec.action', 'is not allowed'],
  ['a bad IP block', 'rules:\n- from: [{source: {ipBlocks: [1.2.3.300]}}]', 'spec.rules[0].from[0].source.ipBlocks[0]', 'not an IP address'],
]);

describe('strict input', () => {
  it('keeps an unknown field as a warning with --allow-unknown-fields', () => {
    setAllowUnknownFields(true);
    try {
      const found = problemsOf('VirtualService', `gatways: [gw]\n${ROUTE()}`);
      assert.deepEqual(found.map((p) => [p.severity, p.field]), [['warning', 'spec.gatways']]);
      assert.match(found[0]!.message, /did you mean `gateways`\?/);
    } finally {
      setAllowUnknownFields(false);
    }
  });

  it('refuses the later of two resources with one kind, namespace and name, naming both places', () => {
    const text = `${doc('VirtualService', ROUTE())}---\n${doc('VirtualService', ROUTE())}`;
    const { resources } = parseConfigText(text, 'vs.yaml');
    const { valid, problems } = validateAll(resources);
    assert.equal(valid.length, 1);
    assert.equal(valid[0], resources[0]);
    assert.equal(problems.length, 1);
    assert.equal(problems[0]!.line, 11);
    assert.match(problems[0]!.message, /already defined at vs\.yaml:1/);
  });

  it('reads an IPv6 address ending in "::" inside a flow list as a string, as Kubernetes does', () => {
    const { resources } = parseConfigText('apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec:\n  x: [1.2.3.4, 001:db8::, fe80::, a: ]\n', 'f.yaml');
    assert.deepEqual((resources[0]!.spec as { x: unknown }).x, ['1.2.3.4', '001:db8::', 'fe80::', { a: null }]);
  });
});
