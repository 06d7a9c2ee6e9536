// A garbage feed must never make validation throw: every node of valid resources replaced by garbage
// values, and whole resources of garbage; problems are always values.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { validateAll, validateResource } from '../src/core/config/validate.js';
import type { Resource } from '../src/core/model/resource.js';
import { docOf, load } from './helpers/validate-table.js';
import { BOOKINFO } from './helpers/bookinfo-yaml.js';

describe('garbage never makes validation throw', () => {
  const GARBAGE: readonly unknown[] = [null, 'text', '80', 42, -1, 1.5, true, [], [null], ['x', 3], {}, { a: null }, [[[]]], { exact: { regex: [] } }, 1e308, ''];

  // Replaces one node of a valid spec at a time with each garbage value, everywhere in the tree.
  function* mutations(value: unknown): Generator<unknown> {
    for (const g of GARBAGE) yield g;
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) for (const m of mutations(value[i])) yield value.map((v, j) => (j === i ? m : v));
    } else if (value !== null && typeof value === 'object') {
      for (const key of Object.keys(value)) {
        for (const m of mutations((value as Record<string, unknown>)[key])) yield { ...(value as object), [key]: m };
      }
    }
  }

  const seeds = [
    ...load(BOOKINFO),
    ...load(docOf('Gateway', 'servers:\n- port: {number: 443, name: https, protocol: HTTPS}\n  hosts: [a.example.com]\n  tls: {mode: MUTUAL, serverCertificate: /c, privateKey: /k, caCertificates: /ca, tlsCertificates: [{serverCertificate: /c}], minProtocolVersion: TLSV1_2}')),
    ...load(docOf('VirtualService', 'hosts: [a.com]\ngateways: [gw]\nhttp:\n- match: [{uri: {regex: "a"}, headers: {x: {}}, queryParams: {q: {exact: ""}}, withoutHeaders: {y: {prefix: p}}}]\n  rewrite: {uriRegexRewrite: {match: "a", rewrite: b}, authority: x}\n  redirect: {uri: /x, redirectCode: 301}\n  directResponse: {status: 200, body: {string: x}}\n  fault: {delay: {fixedDelay: 1s, percentage: {value: 1}}, abort: {httpStatus: 500}}\n  retries: {attempts: 1, retryOn: 5xx}\n  mirrors: [{destination: {host: m}, percentage: {value: 1}}]\n  corsPolicy: {allowOrigins: [{exact: x}], allowMethods: [GET], maxAge: 1s}\n  headers: {request: {set: {host: h}, remove: [a]}, response: {add: {b: c}}}\ntls:\n- match: [{sniHosts: [a.com], destinationSubnets: [10.0.0.0/8]}]\n  route: [{destination: {host: a}}]\ntcp:\n- match: [{port: 1}]\n  route: [{destination: {host: a}, weight: 1}]')),
    ...load(docOf('DestinationRule', 'host: r\nworkloadSelector: {matchLabels: {a: b}}\ntrafficPolicy:\n  loadBalancer: {consistentHash: {httpCookie: {name: c, ttl: 1s, attributes: [{name: a, value: b}]}, maglev: {tableSize: 7}}, localityLbSetting: {distribute: [{from: a, to: {b: 100}}], failover: [{from: a, to: b}]}, warmup: {duration: 1s}}\n  connectionPool: {tcp: {maxConnections: 1, tcpKeepalive: {time: 1s}}, http: {http2KeepAlive: {time: 1s}}}\n  outlierDetection: {interval: 1s}\n  tls: {mode: MUTUAL, clientCertificate: c, privateKey: k, subjectAltNames: [a]}\n  portLevelSettings: [{port: {number: 80}, tls: {mode: SIMPLE}}]\n  tunnel: {protocol: CONNECT, targetHost: a.com, targetPort: 1}\n  retryBudget: {percent: {value: 1}}')),
    ...load(docOf('ServiceEntry', 'hosts: [a.com]\naddresses: [10.0.0.1]\nports: [{number: 80, name: http, protocol: HTTP, targetPort: 8080}]\nresolution: STATIC\nendpoints: [{address: 10.0.0.2, ports: {http: 1}, labels: {a: b}, locality: a/b}]\nworkloadSelector: {labels: {a: b}}\nexportTo: ["."]')),
    ...load(`apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c, ports: [{containerPort: 80}]}]}\nstatus: {podIP: 10.0.0.1, podIPs: [{ip: 10.0.0.1}]}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {type: ClusterIP, selector: {a: b}, ports: [{name: a, port: 1, targetPort: 2}]}\n---\napiVersion: v1\nkind: Endpoints\nmetadata: {name: s}\nsubsets: [{addresses: [{ip: 10.0.0.1}], ports: [{port: 1}]}]\n---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: s}\naddressType: IPv4\nendpoints: [{addresses: [10.0.0.1], conditions: {ready: true}}]\nports: [{port: 1}]`),
  ];

  it('over thousands of mutated resources, always with problems as values', () => {
    let runs = 0;
    for (const seed of seeds) {
      const payload = seed.kind === 'EndpointSlice' || seed.kind === 'Endpoints' ? seed.raw : seed.spec;
      for (const mutated of mutations(payload)) {
        const r: Resource = seed.kind === 'EndpointSlice' || seed.kind === 'Endpoints'
          ? { ...seed, raw: (mutated ?? {}) as Record<string, unknown> }
          : { ...seed, spec: mutated, raw: { ...seed.raw, spec: mutated } };
        const found = validateResource(r);
        runs++;
        assert.ok(Array.isArray(found));
        const crash = found.find((p) => p.message.startsWith('could not be validated'));
        assert.equal(crash, undefined, `${seed.kind} ${JSON.stringify(mutated).slice(0, 300)}: ${crash?.message}`);
      }
    }
    assert.ok(runs > 3000, `only ${runs} mutations`);
  });

  it('whole-resource garbage', () => {
    const base = load(docOf('VirtualService', 'hosts: [a.com]\nhttp: [{route: [{destination: {host: a}}]}]'))[0]!;
    for (const g of GARBAGE) {
      for (const kind of ['Gateway', 'VirtualService', 'DestinationRule', 'ServiceEntry', 'WorkloadEntry', 'Service', 'Pod', 'Endpoints', 'EndpointSlice', 'Secret']) {
        const r = { ...base, kind, spec: g, raw: g as Record<string, unknown> };
        assert.doesNotThrow(() => validateResource(r));
        assert.doesNotThrow(() => validateAll([r]));
      }
    }
  });
});
