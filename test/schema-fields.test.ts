// Every field of every Istio kind meshgate reads, from test/fixtures/schema/istio-fields.txt (the
// fields, types, enums and ranges of Istio's v1 schemas): one document per field, with a value of the
// field's type, must never meet "unknown field"; every enum value must be accepted; a negative value
// in an unsigned field and a value past a tight maximum (percentages, status codes) must be refused
// at that field, and the bounds themselves accepted; a value of another type, a duration under 1ms,
// and anything past the schema's structural limits (required keys, oneOf, lengths, item and entry
// counts) must be refused at that field. A field Istio adds shows up here first.
// Beside it, the valid and invalid documents of each kind written from Istio's webhook rules.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { formatProblem } from '../src/core/config/problem.js';
import { fieldName, problems, readFields, sample } from './helpers/istio-fields.js';
import { table } from './helpers/schema-table.js';

const FIELDS = readFields();
const KINDS = [...new Set(FIELDS.map((f) => f.kind))];
const UINT32_MAX = 4294967295;
const INT32_MAX = 2147483647;

describe('every field of the Istio kinds meshgate reads', () => {
  it('lists every kind meshgate validates', () => {
    assert.deepEqual(KINDS, ['Gateway', 'VirtualService', 'DestinationRule', 'ServiceEntry', 'WorkloadEntry', 'Sidecar', 'PeerAuthentication', 'AuthorizationPolicy', 'RequestAuthentication', 'Telemetry', 'Ingress', 'IngressClass', 'BackendTLSPolicy']);
    assert.ok(FIELDS.length > 800);
  });

  for (const kind of KINDS) {
    const fields = FIELDS.filter((f) => f.kind === kind);
    it(`${kind}: no field of Istio's schema is an unknown field (${fields.length} fields)`, () => {
      const unknown: string[] = [];
      for (const f of fields) {
        for (const p of problems(f, sample(f))) if (/unknown field/.test(p.message)) unknown.push(`${f.path.join('.')}: ${formatProblem(p)}`);
      }
      assert.deepEqual(unknown, []);
    });

    it(`${kind}: every enum value is accepted, and a value past a bound is refused at the field`, () => {
      const wrong: string[] = [];
      for (const f of fields) {
        const at = fieldName(f.path);
        const errorsAt = (leaf: unknown) => problems(f, leaf).filter((p) => p.severity === 'error' && p.field === at);
        for (const e of f.enumValues ?? []) {
          const errs = errorsAt(e);
          if (errs.length > 0) wrong.push(`${at} = ${e} refused: ${errs[0]!.message}`);
        }
        if (f.type !== 'integer' && f.type !== 'number') continue;
        // Unsigned in Istio's schema: a negative value is refused.
        if (f.min !== undefined && f.min >= 0 && errorsAt(f.min - 1).length === 0) wrong.push(`${at} = ${f.min - 1} accepted (minimum ${f.min})`);
        // Tight bounds (not merely the width of uint32/int32, which the webhook narrows further).
        const tight = f.max !== undefined && f.max !== UINT32_MAX && f.max !== INT32_MAX;
        if (tight) {
          if (errorsAt(f.max! + 1).length === 0) wrong.push(`${at} = ${f.max! + 1} accepted (maximum ${f.max})`);
          const atMax = errorsAt(f.max);
          if (atMax.length > 0) wrong.push(`${at} = ${f.max} refused: ${atMax[0]!.message}`);
          const atMin = f.min !== undefined ? errorsAt(f.min) : [];
          if (atMin.length > 0) wrong.push(`${at} = ${f.min} refused: ${atMin[0]!.message}`);
        }
      }
      assert.deepEqual(wrong, []);
    });

    it(`${kind}: a value of another type, and every structural limit of the schema, is refused at the field`, () => {
      const wrong: string[] = [];
      for (const f of fields) {
        const at = fieldName(f.path);
        const refused = (leaf: unknown, exact = false) => problems(f, leaf).some((p) => p.severity === 'error' && (p.field === at || (!exact && (p.field.startsWith(`${at}.`) || p.field.startsWith(`${at}[`)))));
        const child = (key: string) => FIELDS.find((g) => g.kind === kind && g.path.join('.') === [...f.path, key].join('.'));
        const otherType = OTHER_TYPE[f.type];
        if (otherType !== undefined && !refused(otherType)) wrong.push(`${at} (${f.type}) accepts ${JSON.stringify(otherType)}`);
        if (f.duration && !refused('0.5ms')) wrong.push(`${at} accepts 0.5ms (a duration of at least 1ms)`);
        if (f.minLength === 1 && !refused('')) wrong.push(`${at} accepts "" (minLength 1)`);
        if (f.maxLength !== undefined && !refused('a'.repeat(f.maxLength + 1))) wrong.push(`${at} accepts ${f.maxLength + 1} characters (maxLength ${f.maxLength})`);
        if (f.minItems === 1 && !refused([], true)) wrong.push(`${at} accepts [] (minItems 1)`);
        const item = child('-');
        if (f.maxItems !== undefined && !refused(Array.from({ length: f.maxItems + 1 }, (_, i) => (item?.type === 'string' ? `a${i}.example.com` : sample(item!))), true)) wrong.push(`${at} accepts ${f.maxItems + 1} items (maxItems ${f.maxItems})`);
        if (f.maxProperties !== undefined && !refused(Object.fromEntries(Array.from({ length: f.maxProperties + 1 }, (_, i) => [`k${i}`, '1'])), true)) wrong.push(`${at} accepts ${f.maxProperties + 1} entries (maxProperties ${f.maxProperties})`);
        if (f.required && !refused({})) wrong.push(`${at} accepts {} (requires ${f.required.join(', ')})`);
        if (f.oneOf) {
          const both = Object.fromEntries(f.oneOf.slice(0, 2).map((k) => [k, sample(child(k)!)]));
          if (!refused(both)) wrong.push(`${at} accepts ${JSON.stringify(both)} (only one of ${f.oneOf.join(', ')})`);
        }
      }
      assert.deepEqual(wrong, []);
    });
  }
});

/** A value of another type than the schema's, for each type (int-or-string takes both). */
const OTHER_TYPE: Readonly<Record<string, unknown>> = { string: { a: 1 }, integer: 'abc', number: 'abc', boolean: 'abc', object: 'abc', array: 'abc' };

// ------------------------------------------------------------------ valid and invalid documents

const RULE = 'jwtRules:\n- issuer: example.com\n  jwksUri: https://example.com/jwks.json';

table('RequestAuthentication documents', 'RequestAuthentication', [
  ['every field of a rule', `targetRefs: [{group: "", kind: Service, name: foo}]\njwtRules:\n- issuer: example.com\n  audiences: [a]\n  jwksUri: https://example.com/jwks.json\n  forwardOriginalToken: true\n  fromCookies: [session]\n  fromHeaders: [{name: x-jwt, prefix: "Bearer "}]\n  fromParams: [token]\n  outputClaimToHeaders: [{claim: sub, header: x-sub}]\n  outputPayloadToHeader: x-payload\n  timeout: 5s\n  spaceDelimitedClaims: [custom_scope, provider.login.scope]`],
  ['a rule without jwksUri or jwks (Istio discovers the keys; meshgate warns and refuses its tokens)', 'jwtRules:\n- issuer: https://accounts.example.com'],
  ['the old spelling jwks_uri', 'jwtRules:\n- issuer: example.com\n  jwks_uri: https://example.com/jwks.json'],
  ['a plain-http jwksUri (a warning)', 'jwtRules:\n- issuer: example.com\n  jwksUri: http://example.com/jwks.json'],
  ['a selector', `selector: {matchLabels: {app: web}}\n${RULE}`],
  ['targetRef and targetRefs together', `targetRefs: [{group: "", kind: Service, name: foo}]\ntargetRef: {group: "", kind: Service, name: foo}\n${RULE}`, 'spec.targetRefs', 'only one of'],
  ['a selector with a targetRef', `selector: {matchLabels: {a: b}}\ntargetRef: {group: "", kind: Service, name: foo}\n${RULE}`, 'spec.targetRef', 'only one of'],
  ['a targetRef without a name', `targetRef: {group: "", kind: Service}\n${RULE}`, 'spec.targetRef.name', 'required'],
  ['a targetRef into another namespace', `targetRef: {group: "", kind: Service, name: foo, namespace: bar}\n${RULE}`, 'spec.targetRef.namespace', 'own namespace'],
  ['a targetRef of an unknown kind', `targetRef: {group: "", kind: Serv_ice, name: foo}\n${RULE}`, 'spec.targetRef.kind', 'cannot target'],
  ['jwks and jwksUri together', 'jwtRules:\n- issuer: example.com\n  jwksUri: https://example.com/jwks.json\n  jwks: \'{"keys":[{"kty":"RSA"}]}\'', 'spec.jwtRules[0].jwks', 'cannot be set together'],
  ['a jwksUri that is not http(s)', 'jwtRules:\n- issuer: example.com\n  jwksUri: ftp://example.com/jwks.json', 'spec.jwtRules[0].jwksUri', 'not an http or https URL'],
  ['an empty issuer', 'jwtRules:\n- issuer: ""\n  jwksUri: https://example.com/jwks.json', 'spec.jwtRules[0].issuer', 'required'],
  ['an empty audience', 'jwtRules:\n- issuer: example.com\n  jwksUri: https://example.com/jwks.json\n  audiences: [""]', 'spec.jwtRules[0].audiences[0]', 'must not be empty'],
  ['an empty space-delimited claim', 'jwtRules:\n- issuer: example.com\n  jwksUri: https://example.com/jwks.json\n  spaceDelimitedClaims: [""]', 'spec.jwtRules[0].spaceDelimitedClaims[0]', 'must not be empty'],
  ['a header without a name', 'jwtRules:\n- issuer: example.com\n  jwksUri: https://example.com/jwks.json\n  fromHeaders: [{prefix: x}]', 'spec.jwtRules[0].fromHeaders[0].name', 'required'],
  ['a timeout below 1ms', 'jwtRules:\n- issuer: example.com\n  jwksUri: https://example.com/jwks.json\n  timeout: 0.5ms', 'spec.jwtRules[0].timeout', 'at least 1ms'],
  ['two rules for one issuer', 'jwtRules:\n- issuer: a\n  jwksUri: https://a/j\n- issuer: a\n  jwksUri: https://a/k', 'spec.jwtRules[1].issuer', 'already configured'],
]);

table('Telemetry documents', 'Telemetry', [
  ['every field', 'metrics:\n- providers: [{name: prometheus}]\n  reportingInterval: 5s\n  overrides:\n  - tagOverrides:\n      request_method: {value: request.method}\n    match: {customMetric: foo}\n    disabled: false\n  - match: {metric: GRPC_REQUEST_MESSAGES, mode: CLIENT}\n    disabled: true\naccessLogging:\n- disabled: false\n  filter: {expression: "true"}\n  match: {mode: CLIENT}\n  providers: [{name: envoy}]\ntracing:\n- providers: [{name: otel}]\n  match: {mode: CLIENT_AND_SERVER}\n  randomSamplingPercentage: 54.54\n  useRequestIdForTraceSampling: true\n  disableSpanReporting: false\n  disableContextPropagation: false\n  enableIstioTags: true\n  customTags:\n    env: {environment: {name: NAME, defaultValue: d}}\n    header: {header: {name: x-name, defaultValue: d}}\n    literal: {literal: {value: v}}\n    formatted: {formatter: {value: "%REQ(:PATH)%"}}'],
  ['UPSERT with a value', 'metrics:\n- overrides:\n  - tagOverrides: {foo: {operation: UPSERT, value: add}}'],
  ['REMOVE without a value', 'metrics:\n- overrides:\n  - tagOverrides: {foo: {operation: REMOVE}}'],
  ['sampling 0 and 100', 'tracing:\n- randomSamplingPercentage: 0\n- randomSamplingPercentage: 100'],
  ['an empty provider name', 'metrics:\n- providers: [{name: ""}]', 'spec.metrics[0].providers[0].name', 'required'],
  ['an empty customMetric', 'metrics:\n- overrides:\n  - match: {customMetric: ""}', 'spec.metrics[0].overrides[0].match.customMetric', 'must not be empty'],
  ['UPSERT without a value', 'metrics:\n- overrides:\n  - tagOverrides: {foo: {operation: UPSERT}}', 'spec.metrics[0].overrides[0].tagOverrides.foo.value', 'must be set'],
  ['REMOVE with a value', 'metrics:\n- overrides:\n  - tagOverrides: {foo: {operation: REMOVE, value: oops}}', 'spec.metrics[0].overrides[0].tagOverrides.foo.value', 'must not be set'],
  ['sampling above 100', 'tracing:\n- randomSamplingPercentage: 100.5', 'spec.tracing[0].randomSamplingPercentage', 'between 0 and 100'],
  ['sampling as Percent mapping', 'tracing:\n- randomSamplingPercentage: {value: 10}', 'spec.tracing[0].randomSamplingPercentage', 'must be a number'],
  ['an unknown metric', 'metrics:\n- overrides:\n  - match: {metric: REQUEST_COUNTS}', 'spec.metrics[0].overrides[0].match.metric', 'unknown metric'],
  ['an unknown mode', 'tracing:\n- match: {mode: BOTH}', 'spec.tracing[0].match.mode', 'is not allowed'],
  ['a literal tag without a value', 'tracing:\n- customTags: {t: {literal: {}}}', 'spec.tracing[0].customTags.t.literal.value', 'required'],
  ['a reportingInterval below 1ms', 'metrics:\n- reportingInterval: 0.1ms', 'spec.metrics[0].reportingInterval', 'at least 1ms'],
  ['a selector with targetRefs', 'selector: {matchLabels: {a: b}}\ntargetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: g}]', 'spec.targetRefs', 'only one of'],
]);

const TP = (policy: string) => `host: reviews\ntrafficPolicy:\n  ${policy}`;

table('DestinationRule documents', 'DestinationRule', [
  ['retryBudget with percent as a number and budgetInterval', TP('retryBudget: {percent: 20, minRetryConcurrency: 3, budgetInterval: 10s}')],
  ['outlierDetectionHttpErrorCodes', TP('outlierDetection: {consecutive5xxErrors: 3, outlierDetectionHttpErrorCodes: [500, 599, 429]}')],
  ['zoneAwareLbSetting', TP('loadBalancer: {zoneAwareLbSetting: {enabled: true, minClusterSize: 3, failover: [{from: us-east, to: us-west}], failoverPriority: [app]}}\n  outlierDetection: {consecutive5xxErrors: 3}')],
  ['warmup aggression 0.5 (greater than 0)', TP('loadBalancer: {warmup: {duration: 60s, aggression: 0.5}}')],
  ['consecutiveLocalOriginFailures with split', TP('outlierDetection: {splitExternalLocalOriginErrors: true, consecutiveLocalOriginFailures: 3}')],
  ['retryBudget percent above 100', TP('retryBudget: {percent: 101}'), 'spec.trafficPolicy.retryBudget.percent', 'between 0 and 100'],
  ['an HTTP error code outside 100-599', TP('outlierDetection: {outlierDetectionHttpErrorCodes: [600]}'), 'spec.trafficPolicy.outlierDetection.outlierDetectionHttpErrorCodes[0]', 'at most 599'],
  ['zoneAwareLbSetting with localityLbSetting', TP('loadBalancer: {localityLbSetting: {enabled: true}, zoneAwareLbSetting: {enabled: true}}'), 'spec.trafficPolicy.loadBalancer.zoneAwareLbSetting', 'only one of'],
  ['zone-aware failover to the same region', TP('loadBalancer: {zoneAwareLbSetting: {failover: [{from: a, to: a}]}}\n  outlierDetection: {consecutive5xxErrors: 3}'), 'spec.trafficPolicy.loadBalancer.zoneAwareLbSetting.failover[0]', 'different regions'],
  ['zone-aware failover with zones', TP('loadBalancer: {zoneAwareLbSetting: {failover: [{from: a/z, to: b}]}}\n  outlierDetection: {consecutive5xxErrors: 3}'), 'spec.trafficPolicy.loadBalancer.zoneAwareLbSetting.failover[0]', 'regions only'],
  ['zone-aware failoverPriority on a topology label', TP('loadBalancer: {zoneAwareLbSetting: {failoverPriority: [topology.kubernetes.io/zone]}}'), 'spec.trafficPolicy.loadBalancer.zoneAwareLbSetting.failoverPriority[0]', 'topology label'],
  ['minClusterSize 0', TP('loadBalancer: {zoneAwareLbSetting: {minClusterSize: 0}}'), 'spec.trafficPolicy.loadBalancer.zoneAwareLbSetting.minClusterSize', 'at least 1'],
  ['warmup aggression 0', TP('loadBalancer: {warmup: {duration: 60s, aggression: 0}}'), 'spec.trafficPolicy.loadBalancer.warmup.aggression', 'greater than 0'],
  ['consecutiveLocalOriginFailures without split', TP('outlierDetection: {consecutiveLocalOriginFailures: 3}'), 'spec.trafficPolicy.outlierDetection.consecutiveLocalOriginFailures', 'splitExternalLocalOriginErrors'],
  ['a maglev table size that is not prime', TP('loadBalancer: {consistentHash: {useSourceIp: true, maglev: {tableSize: 65536}}}'), 'spec.trafficPolicy.loadBalancer.consistentHash.maglev.tableSize', 'prime'],
  ['a tunnel protocol other than CONNECT or POST', TP('tunnel: {protocol: GET, targetHost: a, targetPort: 8080}'), 'spec.trafficPolicy.tunnel.protocol', 'is not allowed'],
]);

table('VirtualService documents', 'VirtualService', [
  ['the old spelling mirror_percent', 'hosts: [r]\nhttp:\n- route: [{destination: {host: r}}]\n  mirror: {host: m}\n  mirror_percent: 50'],
  ['mirror_percent above 100', 'hosts: [r]\nhttp:\n- route: [{destination: {host: r}}]\n  mirror: {host: m}\n  mirror_percent: 101', 'spec.http[0].mirror_percent', 'at most 100'],
]);

table('Sidecar documents', 'Sidecar', [
  ['egress hosts and the mode', 'egress:\n- hosts: ["./*", "istio-system/*"]\noutboundTrafficPolicy: {mode: REGISTRY_ONLY}'],
  ['listeners with ports, a catch-all egress last', 'workloadSelector: {labels: {app: ratings}}\ningress:\n- port: {number: 9080, protocol: HTTP, name: somename}\n  defaultEndpoint: unix:///var/run/someuds.sock\n  captureMode: IPTABLES\negress:\n- port: {number: 3306, protocol: MYSQL, name: egressmysql}\n  captureMode: NONE\n  bind: 127.0.0.1\n  hosts: ["*/mysql.foo.com"]\n- hosts: ["istio-system/*"]'],
  ['an egress proxy with ALLOW_ANY', 'outboundTrafficPolicy:\n  mode: ALLOW_ANY\n  egressProxy: {host: foo.bar.svc.cluster.local, subset: v1, port: {number: 443}}'],
  ['an unknown mode', 'outboundTrafficPolicy: {mode: BLOCK}', 'spec.outboundTrafficPolicy.mode', 'is not allowed'],
  ['an egress proxy with REGISTRY_ONLY', 'outboundTrafficPolicy:\n  mode: REGISTRY_ONLY\n  egressProxy: {host: foo.bar}', 'spec.outboundTrafficPolicy.egressProxy', 'only allowed with mode ALLOW_ANY'],
  ['an egress host without a namespace', 'egress:\n- hosts: ["reviews"]', 'spec.egress[0].hosts[0]', 'namespace/dnsName'],
  ['two catch-all egress listeners', 'egress:\n- hosts: ["./*"]\n- hosts: ["istio-system/*"]', 'spec.egress[1].port', 'only one egress listener'],
  ['an ingress listener without a port', 'ingress:\n- defaultEndpoint: 127.0.0.1:8080', 'spec.ingress[0].port', 'needs a port'],
  ['a defaultEndpoint on another address', 'ingress:\n- port: {number: 9080, protocol: HTTP, name: http}\n  defaultEndpoint: 10.0.0.1:8080', 'spec.ingress[0].defaultEndpoint', 'must be 127.0.0.1:PORT'],
  ['an unknown capture mode', 'egress:\n- hosts: ["./*"]\n  captureMode: SOMETIMES', 'spec.egress[0].captureMode', 'is not allowed'],
  ["the ingress sidecar TLS termination task's listener", 'ingress:\n- port: {number: 9080, protocol: HTTPS, name: external}\n  defaultEndpoint: 0.0.0.0:80\n  tls: {mode: MUTUAL, serverCertificate: /etc/istio/tls-certs/tls.crt, privateKey: /etc/istio/tls-certs/tls.key, caCertificates: /etc/istio/tls-ca-certs/ca.crt}'],
  ['ingress tls from a credentialName', 'ingress:\n- port: {number: 9080, protocol: HTTPS, name: external}\n  tls: {mode: SIMPLE, credentialName: httpbin}', 'spec.ingress[0].tls.credentialName', 'not supported'],
  ['ingress tls with ISTIO_MUTUAL', 'ingress:\n- port: {number: 9080, protocol: HTTPS, name: external}\n  tls: {mode: ISTIO_MUTUAL}', 'spec.ingress[0].tls', 'PeerAuthentication decides'],
  ['ingress tls with subjectAltNames', 'ingress:\n- port: {number: 9080, protocol: HTTPS, name: external}\n  defaultEndpoint: 0.0.0.0:80\n  tls: {mode: MUTUAL, serverCertificate: /etc/istio/tls-certs/tls.crt, privateKey: /etc/istio/tls-certs/tls.key, caCertificates: /etc/istio/tls-ca-certs/ca.crt, subjectAltNames: [a.example]}', 'spec.ingress[0].tls.subjectAltNames', 'not supported'],
  ['ingress tls on an HTTP port', 'ingress:\n- port: {number: 9080, protocol: HTTP, name: http}\n  tls: {mode: SIMPLE, serverCertificate: /a.crt, privateKey: /a.key}', 'spec.ingress[0].tls', 'HTTPS or TLS'],
  ['two ingress listeners on one port', 'ingress:\n- port: {number: 9080, protocol: HTTP, name: a}\n- port: {number: 9080, protocol: HTTP, name: b}', 'spec.ingress[1].port.number', 'must be unique'],
]);
