// Unit tables for configuration validation, kind by kind: YAML in, problems out (severity, field path,
// message, and for some the line), for the Istio kinds and the Kubernetes shapes meshgate reads.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { formatProblem } from '../src/core/config/problem.js';
import { validateAll, validateResource } from '../src/core/config/validate.js';
import { check, err, load, SERVER, table, warn } from './helpers/validate-table.js';

table('Gateway (docs/reference/routing.md)', [
  { name: 'a plain HTTP server is fine', kind: 'Gateway', spec: SERVER('', 'HTTP', 80), expect: [] },
  { name: 'HTTPS without tls', kind: 'Gateway', spec: SERVER('', 'HTTPS'), expect: [err('spec.servers[0].tls', 'must have tls settings', 6)] },
  { name: 'TLS without tls', kind: 'Gateway', spec: SERVER('', 'tls'), expect: [err('spec.servers[0].tls', 'must have tls settings')] },
  { name: 'HTTP with httpsRedirect only', kind: 'Gateway', spec: SERVER('  tls: {httpsRedirect: true}', 'HTTP', 80), expect: [] },
  { name: 'HTTP terminating TLS', kind: 'Gateway', spec: SERVER('  tls: {mode: SIMPLE, credentialName: c}', 'HTTP', 80), expect: [err('spec.servers[0].tls', 'only for httpsRedirect')] },
  { name: 'HTTP with certificate files', kind: 'Gateway', spec: SERVER('  tls: {httpsRedirect: true, serverCertificate: /c.pem}', 'http', 80), expect: [err('spec.servers[0].tls', 'only for httpsRedirect')] },
  { name: 'TCP with tls', kind: 'Gateway', spec: SERVER('  tls: {mode: SIMPLE, credentialName: c}', 'TCP', 31400), expect: [err('spec.servers[0].tls', 'cannot have tls settings')] },
  { name: 'SIMPLE with credentialName', kind: 'Gateway', spec: SERVER('  tls: {mode: SIMPLE, credentialName: c}'), expect: [] },
  { name: 'SIMPLE with files', kind: 'Gateway', spec: SERVER('  tls: {mode: SIMPLE, serverCertificate: /c.pem, privateKey: /k.pem}'), expect: [] },
  { name: 'SIMPLE without any certificate', kind: 'Gateway', spec: SERVER('  tls: {mode: SIMPLE}'), expect: [err('spec.servers[0].tls.serverCertificate', 'needs serverCertificate'), err('spec.servers[0].tls.privateKey', 'needs privateKey')] },
  { name: 'SIMPLE with a certificate but no key', kind: 'Gateway', spec: SERVER('  tls: {mode: SIMPLE, serverCertificate: /c.pem}'), expect: [err('spec.servers[0].tls.privateKey', 'needs privateKey')] },
  { name: 'MUTUAL with files needs caCertificates', kind: 'Gateway', spec: SERVER('  tls: {mode: MUTUAL, serverCertificate: /c.pem, privateKey: /k.pem}'), expect: [err('spec.servers[0].tls.caCertificates', 'needs caCertificates')] },
  { name: 'OPTIONAL_MUTUAL with files needs caCertificates', kind: 'Gateway', spec: SERVER('  tls: {mode: OPTIONAL_MUTUAL, serverCertificate: /c.pem, privateKey: /k.pem}'), expect: [err('spec.servers[0].tls.caCertificates', 'needs caCertificates')] },
  { name: 'MUTUAL with credentialName', kind: 'Gateway', spec: SERVER('  tls: {mode: MUTUAL, credentialName: c}'), expect: [] },
  { name: 'two certificate sources', kind: 'Gateway', spec: SERVER('  tls: {mode: SIMPLE, credentialName: c, serverCertificate: /c.pem, privateKey: /k.pem}'), expect: [err('spec.servers[0].tls', 'only one certificate source')] },
  { name: 'credentialName and credentialNames', kind: 'Gateway', spec: SERVER('  tls: {mode: SIMPLE, credentialName: c, credentialNames: [a, b]}'), expect: [err('spec.servers[0].tls', 'only one certificate source')] },
  { name: 'tlsCertificates entries need cert and key', kind: 'Gateway', spec: SERVER('  tls:\n    mode: SIMPLE\n    tlsCertificates: [{serverCertificate: /c.pem}]'), expect: [err('spec.servers[0].tls.tlsCertificates[0].privateKey', 'needs privateKey')] },
  { name: 'caCrl with credentialName', kind: 'Gateway', spec: SERVER('  tls: {mode: MUTUAL, credentialName: c, caCrl: /crl.pem}'), expect: [err('spec.servers[0].tls.caCrl', 'cannot be used with credentialName')] },
  { name: 'caCrl with SIMPLE', kind: 'Gateway', spec: SERVER('  tls: {mode: SIMPLE, serverCertificate: /c.pem, privateKey: /k.pem, caCrl: /crl.pem}'), expect: [err('spec.servers[0].tls.caCrl', 'not supported with SIMPLE')] },
  { name: 'credentialName with no mode is PASSTHROUGH', kind: 'Gateway', spec: SERVER('  tls: {credentialName: c}'), expect: [warn('spec.servers[0].tls', 'certificates will be ignored: tls.mode defaults to PASSTHROUGH', 8)] },
  { name: 'certificates in explicit PASSTHROUGH', kind: 'Gateway', spec: SERVER('  tls: {mode: PASSTHROUGH, serverCertificate: /c.pem}'), expect: [warn('spec.servers[0].tls', 'certificates will be ignored')] },
  { name: 'ISTIO_MUTUAL with other fields', kind: 'Gateway', spec: SERVER('  tls: {mode: ISTIO_MUTUAL, credentialName: c, privateKey: /k.pem}'), expect: [err('spec.servers[0].tls.credentialName', 'ISTIO_MUTUAL'), err('spec.servers[0].tls.privateKey', 'ISTIO_MUTUAL')] },
  { name: 'httpsRedirect on HTTPS warns', kind: 'Gateway', spec: SERVER('  tls: {mode: SIMPLE, credentialName: c, httpsRedirect: true}'), expect: [warn('spec.servers[0].tls.httpsRedirect', 'only to plain HTTP')] },
  { name: 'unknown tls mode', kind: 'Gateway', spec: SERVER('  tls: {mode: STRICT, credentialName: c}'), expect: [err('spec.servers[0].tls.mode', 'use one of PASSTHROUGH')] },
  { name: 'min above max protocol version', kind: 'Gateway', spec: SERVER('  tls: {mode: SIMPLE, credentialName: c, minProtocolVersion: TLSV1_3, maxProtocolVersion: TLSV1_2}'), expect: [err('spec.servers[0].tls.minProtocolVersion', 'above maxProtocolVersion')] },
  { name: 'TLS 1.1 minimum warns about legacy TLS', kind: 'Gateway', spec: SERVER('  tls: {mode: SIMPLE, credentialName: c, minProtocolVersion: TLSV1_1, cipherSuites: [ECDHE-RSA-AES128-SHA]}'), expect: [warn('spec.servers[0].tls.minProtocolVersion', 'this server accepts legacy TLS (TLSV1_1): its OpenSSL security level is lowered to 0 (@SECLEVEL=0)')] },
  { name: 'TLS 1.0 minimum without ciphers for it', kind: 'Gateway', spec: SERVER('  tls: {mode: SIMPLE, credentialName: c, minProtocolVersion: TLSV1_0}'), expect: [warn('spec.servers[0].tls.minProtocolVersion', 'needs cipherSuites that TLSV1_0 supports')] },
  { name: 'unknown protocol version', kind: 'Gateway', spec: SERVER('  tls: {mode: SIMPLE, credentialName: c, minProtocolVersion: TLSv1_2}'), expect: [err('spec.servers[0].tls.minProtocolVersion', 'not allowed')] },
  { name: 'no servers', kind: 'Gateway', spec: 'selector: {istio: ingressgateway}', expect: [err('spec.servers', 'at least one server')] },
  {
    name: 'port fields are required', kind: 'Gateway', spec: 'servers:\n- port: {}\n  hosts: [a.example.com]',
    expect: [err('spec.servers[0].port.number', 'required', 6), err('spec.servers[0].port.protocol', 'required'), err('spec.servers[0].port.name', 'required')],
  },
  { name: 'missing port', kind: 'Gateway', spec: 'servers:\n- hosts: [a.example.com]', expect: [err('spec.servers[0].port', 'port is required')] },
  { name: 'protocol is case-insensitive', kind: 'Gateway', spec: SERVER('', 'grpc-web', 8080), expect: [] },
  { name: 'unsupported protocol', kind: 'Gateway', spec: SERVER('', 'UDP', 53), expect: [err('spec.servers[0].port.protocol', 'unsupported protocol "UDP"')] },
  { name: 'port out of range', kind: 'Gateway', spec: SERVER('', 'HTTP', 70000), expect: [err('spec.servers[0].port.number', 'at most 65535')] },
  { name: 'port number as a string', kind: 'Gateway', spec: 'servers:\n- port: {number: "80", name: http, protocol: HTTP}\n  hosts: [a.example.com]', expect: [err('spec.servers[0].port.number', 'must be a number')] },
  { name: 'targetPort rejected', kind: 'Gateway', spec: 'servers:\n- port: {number: 80, name: http, protocol: HTTP, targetPort: 8080}\n  hosts: [a.example.com]', expect: [err('spec.servers[0].port.targetPort', 'no effect on a Gateway')] },
  {
    name: 'duplicate port names', kind: 'Gateway',
    spec: 'servers:\n- port: {number: 80, name: web, protocol: HTTP}\n  hosts: [a.example.com]\n- port: {number: 8080, name: web, protocol: HTTP}\n  hosts: [b.example.com]',
    expect: [err('spec.servers[1].port.name', 'duplicate port name "web"', 8)],
  },
  { name: 'no hosts', kind: 'Gateway', spec: 'servers:\n- port: {number: 80, name: http, protocol: HTTP}\n  hosts: []', expect: [err('spec.servers[0].hosts', 'at least one host')] },
  {
    name: 'host forms', kind: 'Gateway',
    spec: 'servers:\n- port: {number: 80, name: http, protocol: HTTP}\n  hosts: ["*", "*/*", "./a.example.com", "prod/*.example.com", "*.example.com", "10.0.0.1", "ns/*"]',
    expect: [],
  },
  {
    name: 'bad hosts', kind: 'Gateway',
    spec: 'servers:\n- port: {number: 80, name: http, protocol: HTTP}\n  hosts: ["Bad_NS/a.example.com", "a.*.com", "*foo.example.com", "short", "/a.example.com", "UPPER.example.com"]',
    expect: [
      err('spec.servers[0].hosts[0]', 'is not a namespace'), err('spec.servers[0].hosts[1]', 'partial wildcard'),
      err('spec.servers[0].hosts[2]', 'partial wildcard'), err('spec.servers[0].hosts[3]', 'short name'),
      err('spec.servers[0].hosts[4]', 'neither part empty'),
    ],
  },
  { name: 'gateway selector label value', kind: 'Gateway', spec: `selector: {istio: "bad value!"}\n${SERVER('', 'HTTP', 80)}`, expect: [err('spec.selector.istio', 'label value')] },
]);

const VS = (http: string, top = 'hosts: [a.example.com]\ngateways: [gw]'): string => `${top}\nhttp:\n${http}`;
const ROUTE = '  route: [{destination: {host: svc}}]';

table('VirtualService top level (docs/reference/routing.md)', [
  { name: 'needs http, tcp or tls', kind: 'VirtualService', spec: 'hosts: [a.example.com]', expect: [err('spec', 'at least one http, tcp or tls')] },
  { name: '* for the mesh is rejected', kind: 'VirtualService', spec: VS(`-${ROUTE.slice(1)}`, 'hosts: ["*"]'), expect: [err('spec.hosts[0]', 'host * is not allowed')] },
  { name: '* with mesh listed is rejected', kind: 'VirtualService', spec: VS(`-${ROUTE.slice(1)}`, 'hosts: ["*"]\ngateways: [gw, mesh]'), expect: [err('spec.hosts[0]', 'host * is not allowed')] },
  { name: '* on a gateway only is fine', kind: 'VirtualService', spec: VS(`-${ROUTE.slice(1)}`, 'hosts: ["*"]\ngateways: [gw]'), expect: [] },
  { name: 'overlapping hosts', kind: 'VirtualService', spec: VS(`-${ROUTE.slice(1)}`, 'hosts: ["*.foo.com", "*.com"]'), expect: [err('spec.hosts[1]', 'overlaps *.foo.com')] },
  { name: 'duplicate hosts', kind: 'VirtualService', spec: VS(`-${ROUTE.slice(1)}`, 'hosts: [a.com, a.com]'), expect: [err('spec.hosts[1]', 'duplicate host')] },
  { name: '*.foo.com and foo.com do not overlap', kind: 'VirtualService', spec: VS(`-${ROUTE.slice(1)}`, 'hosts: ["*.foo.com", foo.com]\ngateways: [gw]'), expect: [] },
  { name: 'short names and IPs are allowed', kind: 'VirtualService', spec: VS(`-${ROUTE.slice(1)}`, 'hosts: [reviews, 10.1.2.3]'), expect: [] },
  { name: 'gateway names', kind: 'VirtualService', spec: VS(`-${ROUTE.slice(1)}`, 'hosts: [a.com]\ngateways: [mesh, istio-system/gw, gw, "a/b/c", "Bad/gw"]'), expect: [err('spec.gateways[3]', 'not a gateway name'), err('spec.gateways[4]', 'not a namespace name')] },
  { name: 'legacy gateway name warns', kind: 'VirtualService', spec: VS(`-${ROUTE.slice(1)}`, 'hosts: [a.com]\ngateways: [gw.istio-system.svc.cluster.local]'), expect: [warn('spec.gateways[0]', 'prefer istio-system/gw')] },
  { name: 'match.gateways within the top-level gateways (any spelling) is fine', kind: 'VirtualService', spec: VS(`- match: [{gateways: [default/gw]}, {gateways: [gw.default.svc.cluster.local]}]\n${ROUTE}`, 'hosts: [a.com]\ngateways: [gw, mesh]'), expect: [warn('spec.http[0].match[1].gateways[0]', 'legacy gateway name')] },
  { name: 'match.gateways naming a gateway the VirtualService does not bind to warns', kind: 'VirtualService', spec: VS(`- match: [{gateways: [gw, other]}]\n${ROUTE}`), expect: [warn('spec.http[0].match[0].gateways[1]', "other is not in the VirtualService's gateways (default/gw); a VirtualService binds to a gateway only through its top-level gateways")] },
  { name: 'match.gateways with top-level gateways omitted (mesh only) warns', kind: 'VirtualService', spec: VS(`- match: [{gateways: [istio-system/gw]}]\n${ROUTE}`, 'hosts: [a.com]'), expect: [warn('spec.http[0].match[0].gateways[0]', "not in the VirtualService's gateways (mesh)")] },
  { name: 'tls match.gateways outside the top-level gateways warns', kind: 'VirtualService', spec: 'hosts: [a.com]\ngateways: [gw]\ntls:\n- match: [{sniHosts: [a.com], gateways: [mesh]}]\n  route: [{destination: {host: a}}]', expect: [warn('spec.tls[0].match[0].gateways[0]', "mesh is not in the VirtualService's gateways (default/gw)")] },
  { name: 'delegate VS must not list gateways or tcp', kind: 'VirtualService', spec: 'gateways: [gw]\nhttp:\n- route: [{destination: {host: svc}}]\ntcp:\n- route: [{destination: {host: svc}}]', expect: [err('spec.gateways', 'delegate'), err('spec.tcp', 'delegate')] },
  { name: 'exportTo', kind: 'VirtualService', spec: VS(ROUTE.replace('  ', '- '), 'hosts: [a.com]\nexportTo: ["*", ".", "~"]'), expect: [err('spec.exportTo[2]', 'only in a ServiceEntry'), err('spec.exportTo', '"*" already exports'), err('spec.exportTo', '"~" exports to no one')] },
  { name: 'an http rule after a catch-all is left to the analyzer (IST0130)', kind: 'VirtualService', spec: VS(`-${ROUTE.slice(1)}\n- match: [{uri: {prefix: /a}}]\n${ROUTE}`), expect: [] },
]);

table('HTTP matches and StringMatch (docs/reference/routing.md)', [
  { name: 'exact, prefix and regex', kind: 'VirtualService', spec: VS(`- match: [{uri: {exact: /a}}, {uri: {prefix: /b}}, {uri: {regex: "/c/[0-9]+"}}]\n${ROUTE}`), expect: [] },
  { name: 'two kinds in one StringMatch', kind: 'VirtualService', spec: VS(`- match: [{uri: {exact: /a, prefix: /b}}]\n${ROUTE}`), expect: [err('spec.http[0].match[0].uri', 'only one of exact, prefix or regex')] },
  { name: 'empty uri match', kind: 'VirtualService', spec: VS(`- match: [{uri: {}}]\n${ROUTE}`), expect: [err('spec.http[0].match[0].uri', 'needs one of exact, prefix or regex')] },
  { name: '{} in headers, queryParams and withoutHeaders is presence', kind: 'VirtualService', spec: VS(`- match: [{headers: {x-a: {}}, queryParams: {q: {}}, withoutHeaders: {x-b: {}}}]\n${ROUTE}`), expect: [] },
  {
    name: 'invalid regex, with its line', kind: 'VirtualService',
    spec: VS(`- match:\n  - uri:\n      regex: "/a(b"\n${ROUTE}`),
    expect: [err('spec.http[0].match[0].uri.regex', 'not a valid RE2 regex', 10)],
  },
  { name: 'lookahead is not RE2', kind: 'VirtualService', spec: VS(`- match: [{headers: {x-a: {regex: "(?=a)b"}}}]\n${ROUTE}`), expect: [err('spec.http[0].match[0].headers.x-a.regex', 'not a valid RE2 regex')] },
  { name: 'empty regex', kind: 'VirtualService', spec: VS(`- match: [{uri: {regex: ""}}]\n${ROUTE}`), expect: [err('spec.http[0].match[0].uri.regex', 'must not be empty')] },
  { name: 'regex over 1024 characters', kind: 'VirtualService', spec: VS(`- match: [{uri: {regex: "${'a'.repeat(1025)}"}}]\n${ROUTE}`), expect: [err('spec.http[0].match[0].uri.regex', 'at most 1024')] },
  { name: 'empty prefix on uri is fine', kind: 'VirtualService', spec: VS(`- match: [{uri: {prefix: ""}}]\n${ROUTE}`), expect: [] },
  { name: 'empty prefix elsewhere', kind: 'VirtualService', spec: VS(`- match: [{authority: {prefix: ""}, headers: {x-a: {prefix: ""}}}]\n${ROUTE}`), expect: [err('spec.http[0].match[0].authority.prefix', 'only for uri'), err('spec.http[0].match[0].headers.x-a.prefix', 'only for uri')] },
  { name: 'header names must be lower-case', kind: 'VirtualService', spec: VS(`- match: [{headers: {End-User: {exact: jason}}}]\n${ROUTE}`), expect: [err('spec.http[0].match[0].headers.End-User', 'must be lower-case')] },
  { name: 'regex "*" in withoutHeaders is absence, with a warning', kind: 'VirtualService', spec: VS(`- match: [{withoutHeaders: {x-a: {regex: "*"}}}]\n${ROUTE}`), expect: [warn('spec.http[0].match[0].withoutHeaders.x-a.regex', 'presence match (the header must be absent)')] },
  { name: 'regex "*" in headers is presence, with a warning', kind: 'VirtualService', spec: VS(`- match: [{headers: {x-a: {regex: "*"}}}]\n${ROUTE}`), expect: [warn('spec.http[0].match[0].headers.x-a.regex', 'regex "*" is not valid RE2; like Istio, meshgate reads it as a presence match')] },
  { name: 'regex "*" in queryParams is presence, with a warning', kind: 'VirtualService', spec: VS(`- match: [{queryParams: {q: {regex: "*"}}}]\n${ROUTE}`), expect: [warn('spec.http[0].match[0].queryParams.q.regex', 'presence match (any value matches')] },
  { name: 'regex "*" on uri stays an error', kind: 'VirtualService', spec: VS(`- match: [{uri: {regex: "*"}}]\n${ROUTE}`), expect: [err('spec.http[0].match[0].uri.regex', 'not a valid RE2 regex')] },
  { name: 'numbers must be quoted', kind: 'VirtualService', spec: VS(`- match: [{queryParams: {debug: {exact: 1}}}]\n${ROUTE}`), expect: [err('spec.http[0].match[0].queryParams.debug.exact', 'quote 1')] },
  { name: 'JWT claims only on gateways', kind: 'VirtualService', spec: VS(`- match: [{headers: {"@request.auth.claims.group": {exact: a}}}]\n${ROUTE}`, 'hosts: [a.com]'), expect: [err('spec.http[0].match[0].headers["@request.auth.claims.group"]', 'only on gateways')] },
  { name: 'JWT claims on a gateway', kind: 'VirtualService', spec: VS(`- match: [{headers: {"@request.auth.claims[group]": {exact: a}}}]\n${ROUTE}`), expect: [] },
  { name: 'match port and source namespace', kind: 'VirtualService', spec: VS(`- match: [{port: 0, sourceNamespace: Bad}]\n${ROUTE}`), expect: [err('spec.http[0].match[0].port', 'at least 1'), err('spec.http[0].match[0].sourceNamespace', 'not a namespace')] },
  { name: 'misspelt field is an error with the close name', kind: 'VirtualService', spec: VS(`- matches: [{uri: {exact: /a}}]\n${ROUTE}`), expect: [err('spec.http[0].matches', 'unknown field; did you mean `match`?')] },
]);

table('HTTP route actions (docs/reference/routing.md)', [
  { name: 'route and redirect', kind: 'VirtualService', spec: VS(`- redirect: {uri: /x}\n${ROUTE}`), expect: [err('spec.http[0].redirect', 'cannot be combined with route')] },
  { name: 'redirect and directResponse', kind: 'VirtualService', spec: VS('- redirect: {uri: /x}\n  directResponse: {status: 200}'), expect: [err('spec.http[0].directResponse', 'cannot be combined with redirect')] },
  { name: 'route and directResponse', kind: 'VirtualService', spec: VS(`- directResponse: {status: 200}\n${ROUTE}`), expect: [err('spec.http[0].directResponse', 'cannot be combined with route')] },
  { name: 'fault and rewrite with redirect', kind: 'VirtualService', spec: VS('- redirect: {uri: /x}\n  rewrite: {uri: /y}\n  fault: {abort: {httpStatus: 500, percentage: {value: 1}}}'), expect: [err('spec.http[0].fault', 'with redirect'), err('spec.http[0].rewrite', 'with redirect')] },
  { name: 'fault and rewrite with directResponse', kind: 'VirtualService', spec: VS('- directResponse: {status: 503}\n  rewrite: {uri: /y}\n  fault: {abort: {httpStatus: 500, percentage: {value: 1}}}'), expect: [err('spec.http[0].fault', 'with directResponse'), err('spec.http[0].rewrite', 'with directResponse')] },
  { name: 'no action', kind: 'VirtualService', spec: VS('- match: [{uri: {prefix: /}}]'), expect: [err('spec.http[0]', 'needs one of route, redirect or directResponse')] },
  { name: 'mirror with mirrors', kind: 'VirtualService', spec: VS(`- mirror: {host: m}\n  mirrors: [{destination: {host: m2}}]\n${ROUTE}`), expect: [err('spec.http[0].mirrors', 'mirror and mirrors')] },
  { name: 'delegate root with route', kind: 'VirtualService', spec: VS(`- delegate: {name: d, namespace: other}\n${ROUTE}`), expect: [err('spec.http[0].route', 'with delegate')] },
  { name: 'delegate inside a delegate', kind: 'VirtualService', spec: 'http:\n- delegate: {name: d}', expect: [err('spec.http[0].delegate', 'cannot delegate again'), err('spec.http[0]', 'needs one of route')] },
  { name: 'destination host required', kind: 'VirtualService', spec: VS('- route: [{destination: {subset: v1}}, {weight: 10}]'), expect: [err('spec.http[0].route[0].destination.host', 'destination.host is required'), err('spec.http[0].route[1].destination', 'destination is required')] },
  {
    name: 'negative weight, with its line', kind: 'VirtualService',
    spec: VS('- route:\n  - destination: {host: a}\n    weight: 110\n  - destination: {host: b}\n    weight: -10'),
    expect: [err('spec.http[0].route[1].weight', 'must not be negative', 12)],
  },
  { name: 'several destinations adding up to 0', kind: 'VirtualService', spec: VS('- route: [{destination: {host: a}}, {destination: {host: b}, weight: 0}]'), expect: [err('spec.http[0].route', 'must not add up to 0')] },
  { name: 'one destination with weight 0 is fine', kind: 'VirtualService', spec: VS('- route: [{destination: {host: a}, weight: 0}]'), expect: [] },
  { name: 'fractional weight', kind: 'VirtualService', spec: VS('- route: [{destination: {host: a}, weight: 50.5}, {destination: {host: b}, weight: 49.5}]'), expect: [err('spec.http[0].route[0].weight', 'whole number'), err('spec.http[0].route[1].weight', 'whole number')] },
  { name: 'destination * and bad subset and port', kind: 'VirtualService', spec: VS('- route: [{destination: {host: "*", subset: V1, port: {number: 0}}}]'), expect: [err('spec.http[0].route[0].destination.host', 'cannot be *'), err('spec.http[0].route[0].destination.subset', 'subset name'), err('spec.http[0].route[0].destination.port.number', 'at least 1')] },
  { name: 'supported redirect codes', kind: 'VirtualService', spec: VS('- redirect: {uri: /a, redirectCode: 308}\n- redirect: {scheme: https, redirectCode: 302}'), expect: [] },
  { name: 'other 3xx redirect code warns', kind: 'VirtualService', spec: VS('- redirect: {uri: /a, redirectCode: 305}'), expect: [warn('spec.http[0].redirect.redirectCode', 'the route will be dropped')] },
  { name: 'non-3xx redirect code', kind: 'VirtualService', spec: VS('- redirect: {uri: /a, redirectCode: 200}'), expect: [err('spec.http[0].redirect.redirectCode', 'not a redirect code')] },
  { name: 'redirect scheme', kind: 'VirtualService', spec: VS('- redirect: {scheme: ftp}'), expect: [err('spec.http[0].redirect.scheme', 'use one of http, https')] },
  { name: 'redirect port and derivePort', kind: 'VirtualService', spec: VS('- redirect: {port: 8443, derivePort: FROM_REQUEST_PORT}'), expect: [err('spec.http[0].redirect.derivePort', 'cannot be set together with port')] },
  { name: 'redirect prefixRewrite needs prefix matches', kind: 'VirtualService', spec: VS('- match: [{uri: {prefix: /a}}, {uri: {exact: /b}}, {uri: {regex: /c.*}}]\n  redirect: {prefixRewrite: /z}'), expect: [err('spec.http[0].redirect.prefixRewrite', 'match[1].uri is not a prefix', 9), err('spec.http[0].redirect.prefixRewrite', 'match[2].uri is not a prefix', 9)] },
  { name: 'redirect prefixRewrite with a prefix, or with no uri match', kind: 'VirtualService', spec: VS('- match: [{uri: {prefix: /a}}, {headers: {x: {exact: y}}}]\n  redirect: {prefixRewrite: /z}\n- redirect: {prefixRewrite: /z}'), expect: [] },
  { name: 'redirect uri and prefixRewrite', kind: 'VirtualService', spec: VS('- redirect: {uri: /a, prefixRewrite: /b}'), expect: [err('spec.http[0].redirect.prefixRewrite', 'cannot be set together with uri')] },
  { name: 'empty redirect', kind: 'VirtualService', spec: VS('- redirect: {redirectCode: 301}'), expect: [err('spec.http[0].redirect', 'at least one of uri')] },
  { name: 'directResponse status', kind: 'VirtualService', spec: VS('- directResponse: {status: 600}\n- directResponse: {body: {string: x}}'), expect: [err('spec.http[0].directResponse.status', 'between 200 and 599'), err('spec.http[1].directResponse.status', 'required')] },
  { name: 'directResponse string and bytes', kind: 'VirtualService', spec: VS('- directResponse: {status: 200, body: {string: a, bytes: YQ==}}'), expect: [err('spec.http[0].directResponse.body.bytes', 'cannot be set together with string')] },
  { name: 'directResponse bytes must be base64', kind: 'VirtualService', spec: VS('- directResponse: {status: 200, body: {bytes: "not base64!"}}'), expect: [err('spec.http[0].directResponse.body.bytes', 'base64')] },
  { name: 'directResponse body over 100 KB warns', kind: 'VirtualService', spec: VS(`- directResponse: {status: 200, body: {string: "${'x'.repeat(150 * 1024)}"}}`), expect: [warn('spec.http[0].directResponse.body.string', 'over 100 KB')] },
  { name: 'directResponse body of 1 MB', kind: 'VirtualService', spec: VS(`- directResponse: {status: 200, body: {bytes: "${Buffer.alloc(1024 * 1024).toString('base64')}"}}`), expect: [err('spec.http[0].directResponse.body.bytes', 'under 1 MB')] },
  { name: 'rewrite uri and uriRegexRewrite', kind: 'VirtualService', spec: VS(`- rewrite: {uri: /a, uriRegexRewrite: {match: "^/b", rewrite: /c}}\n${ROUTE}`), expect: [err('spec.http[0].rewrite.uriRegexRewrite', 'cannot both be set')] },
  { name: 'uriRegexRewrite needs a valid RE2 match', kind: 'VirtualService', spec: VS(`- rewrite: {uriRegexRewrite: {match: "(", rewrite: /c}}\n${ROUTE}`), expect: [err('spec.http[0].rewrite.uriRegexRewrite.match', 'RE2')] },
  { name: 'empty rewrite', kind: 'VirtualService', spec: VS(`- rewrite: {}\n${ROUTE}`), expect: [err('spec.http[0].rewrite', 'must set uri')] },
  {
    name: 'authority set in two places', kind: 'VirtualService',
    spec: VS(`- rewrite: {authority: a.internal}\n  headers: {request: {set: {host: b.internal}}}\n${ROUTE}`),
    expect: [err('spec.http[0].headers.request.set.host', 'set it in one place only')],
  },
  { name: ':authority in add counts too', kind: 'VirtualService', spec: VS(`- headers: {request: {set: {host: a}, add: {":authority": b}}}\n${ROUTE}`), expect: [err('spec.http[0].headers.request.add[":authority"]', 'one place only')] },
  { name: 'host and pseudo-headers elsewhere', kind: 'VirtualService', spec: VS(`- headers: {response: {set: {host: a}}, request: {set: {":path": /x}, remove: [host]}}\n${ROUTE}`), expect: [err('spec.http[0].headers.response.set.host', 'host header'), err('spec.http[0].headers.request.set[":path"]', 'pseudo-header'), err('spec.http[0].headers.request.remove[0]', 'host header')] },
  { name: 'timeouts', kind: 'VirtualService', spec: VS(`- timeout: 1.5s\n${ROUTE}\n- timeout: 10\n${ROUTE}\n- timeout: 5 seconds\n${ROUTE}\n- timeout: 0s\n${ROUTE}`), expect: [err('spec.http[1].timeout', 'duration string'), err('spec.http[2].timeout', 'not a duration'), err('spec.http[3].timeout', 'at least 1ms')] },
  { name: 'retries', kind: 'VirtualService', spec: VS(`- retries: {attempts: -1}\n${ROUTE}\n- retries: {attempts: 3, perTryTimeout: 2s, retryOn: "5xx,connect-failure,503,bogus"}\n${ROUTE}\n- retries: {perTryTimeout: 1s}\n${ROUTE}`), expect: [err('spec.http[0].retries.attempts', 'must not be negative'), err('spec.http[1].retries.retryOn', '"bogus"'), err('spec.http[2].retries.perTryTimeout', 'attempts is 0')] },
  { name: 'fault percentages and statuses', kind: 'VirtualService', spec: VS(`- fault: {delay: {fixedDelay: 500us, percentage: {value: 101}}, abort: {httpStatus: 700, percentage: {value: -1}}}\n${ROUTE}`), expect: [err('spec.http[0].fault.delay.fixedDelay', 'at least 1ms'), err('spec.http[0].fault.delay.percentage.value', 'between 0 and 100'), err('spec.http[0].fault.abort.httpStatus', 'between 200 and 599'), err('spec.http[0].fault.abort.percentage.value', 'between 0 and 100')] },
  { name: 'fault without percentage never fires', kind: 'VirtualService', spec: VS(`- fault: {abort: {httpStatus: 503}}\n${ROUTE}`), expect: [warn('spec.http[0].fault.abort', 'never fires')] },
  { name: 'empty fault and grpc status', kind: 'VirtualService', spec: VS(`- fault: {}\n${ROUTE}\n- fault: {abort: {grpcStatus: NOPE, percentage: {value: 5}}}\n${ROUTE}`), expect: [err('spec.http[0].fault', 'needs a delay, an abort'), err('spec.http[1].fault.abort.grpcStatus', 'use one of OK')] },
  { name: 'mirror percentage', kind: 'VirtualService', spec: VS(`- mirror: {host: m}\n  mirrorPercentage: {value: 150}\n${ROUTE}\n- mirrors: [{destination: {host: m}, percentage: {value: 50}}]\n${ROUTE}`), expect: [err('spec.http[0].mirrorPercentage.value', 'between 0 and 100')] },
  { name: 'mirrorPercentage without mirror', kind: 'VirtualService', spec: VS(`- mirrors: [{destination: {host: m}}]\n  mirrorPercentage: {value: 5}\n${ROUTE}`), expect: [warn('spec.http[0].mirrorPercentage', 'use mirrors[].percentage')] },
  { name: 'mirrors percentages and destinations', kind: 'VirtualService', spec: VS(`- mirrors: [{destination: {host: m}, percentage: {value: 101}}, {percentage: {value: 5}}]\n${ROUTE}`), expect: [err('spec.http[0].mirrors[0].percentage.value', 'between 0 and 100'), err('spec.http[0].mirrors[1].destination', 'destination is required')] },
  { name: 'cors without origins', kind: 'VirtualService', spec: VS(`- corsPolicy: {allowMethods: [GET]}\n${ROUTE}`), expect: [warn('spec.http[0].corsPolicy', 'allows no origin')] },
  { name: 'cors', kind: 'VirtualService', spec: VS(`- corsPolicy: {allowOrigins: [{exact: "https://a.com"}, {regex: "("}], allowMethods: [GET, get], maxAge: 1.5s}\n${ROUTE}`), expect: [err('spec.http[0].corsPolicy.allowOrigins[1].regex', 'RE2'), err('spec.http[0].corsPolicy.allowMethods[1]', 'not an HTTP method'), err('spec.http[0].corsPolicy.maxAge', 'whole seconds')] },
]);

table('tls and tcp routes (docs/reference/routing.md)', [
  { name: 'tls route with sniHosts', kind: 'VirtualService', spec: 'hosts: ["*.example.com"]\ngateways: [gw]\ntls:\n- match: [{port: 443, sniHosts: [a.example.com]}]\n  route: [{destination: {host: a, port: {number: 443}}}]', expect: [] },
  { name: 'tls route without sniHosts', kind: 'VirtualService', spec: 'hosts: [a.example.com]\ntls:\n- match: [{port: 443}]\n  route: [{destination: {host: a}}]', expect: [err('spec.tls[0].match[0].sniHosts', 'sniHosts is required')] },
  { name: 'tls route without match', kind: 'VirtualService', spec: 'hosts: [a.example.com]\ntls:\n- route: [{destination: {host: a}}]', expect: [err('spec.tls[0].match', 'at least one match')] },
  { name: 'sniHost outside the VS hosts', kind: 'VirtualService', spec: 'hosts: [a.example.com]\ntls:\n- match: [{sniHosts: [b.example.com]}]\n  route: [{destination: {host: a}}]', expect: [err('spec.tls[0].match[0].sniHosts[0]', 'not covered')] },
  { name: 'tcp route destinations like http', kind: 'VirtualService', spec: 'hosts: [db]\ntcp:\n- match: [{port: 3306, destinationSubnets: [10.0.0.0/8, nope]}]\n  route: [{destination: {host: db}, weight: -1}, {destination: {}}]', expect: [err('spec.tcp[0].match[0].destinationSubnets[1]', 'CIDR'), err('spec.tcp[0].route[0].weight', 'must not be negative'), err('spec.tcp[0].route[1].destination.host', 'required')] },
  { name: 'tcp route without route', kind: 'VirtualService', spec: 'hosts: [db]\ntcp:\n- match: [{port: 3306}]', expect: [err('spec.tcp[0].route', 'at least one destination')] },
]);

table('DestinationRule (docs/concepts/resilience.md)', [
  { name: 'host is required', kind: 'DestinationRule', spec: 'subsets: [{name: v1, labels: {version: v1}}]', expect: [err('spec.host', 'host is required')] },
  { name: 'wildcard hosts are allowed', kind: 'DestinationRule', spec: 'host: "*.example.com"\ntrafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}', expect: [] },
  { name: 'duplicate and bad subset names', kind: 'DestinationRule', spec: 'host: r\nsubsets:\n- {name: v1}\n- {name: v1}\n- {name: V_2}\n- {labels: {a: b}}', expect: [err('spec.subsets[1].name', 'duplicate subset name', 8), err('spec.subsets[2].name', 'may use only'), err('spec.subsets[3].name', 'required')] },
  { name: 'simple and consistentHash', kind: 'DestinationRule', spec: 'host: r\ntrafficPolicy: {loadBalancer: {simple: RANDOM, consistentHash: {useSourceIp: true}}}', expect: [err('spec.trafficPolicy.loadBalancer.consistentHash', 'cannot be set together with simple')] },
  { name: 'unknown simple LB', kind: 'DestinationRule', spec: 'host: r\ntrafficPolicy: {loadBalancer: {simple: FASTEST}}', expect: [err('spec.trafficPolicy.loadBalancer.simple', 'LEAST_REQUEST')] },
  { name: 'consistentHash needs exactly one key', kind: 'DestinationRule', spec: 'host: r\ntrafficPolicy: {loadBalancer: {consistentHash: {}}}\nsubsets:\n- name: v1\n  trafficPolicy: {loadBalancer: {consistentHash: {httpHeaderName: x-user, useSourceIp: true}}}', expect: [err('spec.trafficPolicy.loadBalancer.consistentHash', 'needs one hash key'), err('spec.subsets[0].trafficPolicy.loadBalancer.consistentHash.useSourceIp', 'cannot be set together')] },
  { name: 'cookie needs a name', kind: 'DestinationRule', spec: 'host: r\ntrafficPolicy: {loadBalancer: {consistentHash: {httpCookie: {ttl: 0s}}}}', expect: [err('spec.trafficPolicy.loadBalancer.consistentHash.httpCookie.name', 'required')] },
  { name: 'maglev table size', kind: 'DestinationRule', spec: 'host: r\nsubsets:\n- {name: a, trafficPolicy: {loadBalancer: {consistentHash: {useSourceIp: true, maglev: {tableSize: 65537}}}}}\n- {name: b, trafficPolicy: {loadBalancer: {consistentHash: {useSourceIp: true, maglev: {tableSize: 1000}}}}}\n- {name: c, trafficPolicy: {loadBalancer: {consistentHash: {useSourceIp: true, maglev: {tableSize: 5000011}}}}}', expect: [err('spec.subsets[1].trafficPolicy.loadBalancer.consistentHash.maglev.tableSize', 'prime'), err('spec.subsets[2].trafficPolicy.loadBalancer.consistentHash.maglev.tableSize', 'below 5000011')] },
  { name: 'locality: one of distribute, failover, failoverPriority', kind: 'DestinationRule', spec: 'host: r\ntrafficPolicy:\n  outlierDetection: {consecutive5xxErrors: 1}\n  loadBalancer:\n    localityLbSetting:\n      distribute: [{from: "us-west/*", to: {"us-west/*": 80, "us-east/*": 20}}]\n      failover: [{from: us-east, to: us-west}]', expect: [err('spec.trafficPolicy.loadBalancer.localityLbSetting.failover', 'only one of distribute')] },
  {
    name: 'locality weights', kind: 'DestinationRule',
    spec: 'host: r\ntrafficPolicy:\n  loadBalancer:\n    localityLbSetting:\n      distribute: [{from: "a/*/c", to: {"b/*": 60, "c/*": 0}}]',
    expect: [err('spec.trafficPolicy.loadBalancer.localityLbSetting.distribute[0].from', 'at the end only'), err('spec.trafficPolicy.loadBalancer.localityLbSetting.distribute[0].to["c/*"]', 'at least 1'), err('spec.trafficPolicy.loadBalancer.localityLbSetting.distribute[0].to', 'add up to 60')],
  },
  {
    name: 'failover regions, without outlier detection', kind: 'DestinationRule',
    spec: 'host: r\ntrafficPolicy:\n  loadBalancer:\n    localityLbSetting:\n      failover: [{from: us-east/a, to: us-east/a}]',
    expect: [err('spec.trafficPolicy.loadBalancer.localityLbSetting.failover[0].from', 'region only'), err('spec.trafficPolicy.loadBalancer.localityLbSetting.failover[0].to', 'region only'), err('spec.trafficPolicy.loadBalancer.localityLbSetting.failover[0].to', 'different region'), warn('spec.trafficPolicy.loadBalancer.localityLbSetting', 'outlierDetection')],
  },
  { name: 'connection pool numbers and durations', kind: 'DestinationRule', spec: 'host: r\ntrafficPolicy:\n  connectionPool:\n    tcp: {maxConnections: -1, connectTimeout: 30ms, idleTimeout: 0s}\n    http: {http1MaxPendingRequests: -5, idleTimeout: soon, h2UpgradePolicy: UPGRADE, useClientProtocol: true}', expect: [err('spec.trafficPolicy.connectionPool.tcp.maxConnections', 'must not be negative'), err('spec.trafficPolicy.connectionPool.http.http1MaxPendingRequests', 'must not be negative'), err('spec.trafficPolicy.connectionPool.http.idleTimeout', 'not a duration'), err('spec.trafficPolicy.connectionPool.http.useClientProtocol', 'UPGRADE')] },
  { name: 'empty connection pool and policy', kind: 'DestinationRule', spec: 'host: r\ntrafficPolicy: {connectionPool: {}}\nsubsets: [{name: v1, trafficPolicy: {}}]', expect: [err('spec.trafficPolicy.connectionPool', 'tcp, http, or both'), err('spec.subsets[0].trafficPolicy', 'at least one of')] },
  { name: 'outlier detection', kind: 'DestinationRule', spec: 'host: r\ntrafficPolicy:\n  outlierDetection: {consecutive5xxErrors: 5, interval: 1m, baseEjectionTime: 15m, maxEjectionPercent: 101, consecutiveLocalOriginFailures: 3, consecutiveErrors: 2}', expect: [err('spec.trafficPolicy.outlierDetection.maxEjectionPercent', 'at most 100'), err('spec.trafficPolicy.outlierDetection.consecutiveLocalOriginFailures', 'splitExternalLocalOriginErrors'), warn('spec.trafficPolicy.outlierDetection.consecutiveErrors', 'deprecated')] },
  { name: 'client tls', kind: 'DestinationRule', spec: 'host: r\ntrafficPolicy: {tls: {mode: MUTUAL}}\nsubsets:\n- {name: a, trafficPolicy: {tls: {mode: SIMPLE, credentialName: c, caCertificates: /ca.pem}}}\n- {name: b, trafficPolicy: {tls: {mode: PERMISSIVE}}}', expect: [err('spec.trafficPolicy.tls.clientCertificate', 'MUTUAL needs clientCertificate'), err('spec.trafficPolicy.tls.privateKey', 'MUTUAL needs privateKey'), err('spec.subsets[0].trafficPolicy.tls.caCertificates', 'credentialName'), err('spec.subsets[1].trafficPolicy.tls.mode', 'ISTIO_MUTUAL')] },
  { name: 'portLevelSettings need port.number', kind: 'DestinationRule', spec: 'host: r\ntrafficPolicy:\n  portLevelSettings:\n  - loadBalancer: {simple: RANDOM}\n  - port: {number: 80}\n    tls: {mode: ISTIO_MUTUAL}', expect: [err('spec.trafficPolicy.portLevelSettings[0].port.number', 'port.number is required')] },
  { name: 'workloadSelector limits exportTo', kind: 'DestinationRule', spec: 'host: r\nworkloadSelector: {matchLabels: {app: a}}\nexportTo: ["*"]\ntrafficPolicy: {tls: {mode: ISTIO_MUTUAL}}', expect: [err('spec.exportTo[0]', 'own namespace')] },
]);

table('ServiceEntry and WorkloadEntry (docs/reference/routing.md)', [
  { name: 'an external API', kind: 'ServiceEntry', spec: 'hosts: [api.example.com]\nports: [{number: 443, name: https, protocol: TLS}]\nresolution: DNS\nlocation: MESH_EXTERNAL', expect: [] },
  { name: 'hosts are required', kind: 'ServiceEntry', spec: 'ports: [{number: 80, name: http, protocol: HTTP}]', expect: [err('spec.hosts', 'at least one host')] },
  { name: '* is not a host', kind: 'ServiceEntry', spec: 'hosts: ["*"]\nports: [{number: 80, name: http, protocol: HTTP}]', expect: [err('spec.hosts[0]', 'not allowed in a ServiceEntry')] },
  { name: 'too many hosts', kind: 'ServiceEntry', spec: `hosts: [${Array.from({ length: 257 }, (_, i) => `h${i}.example.com`).join(', ')}]\nports: [{number: 80, name: http, protocol: HTTP}]`, expect: [err('spec.hosts', 'at most 256')] },
  { name: 'ports unique by number and name', kind: 'ServiceEntry', spec: 'hosts: [a.example.com]\nports:\n- {number: 80, name: http, protocol: HTTP}\n- {number: 80, name: http, protocol: HTTP2}\n- {number: 81, name: Web, protocol: SOAP}', expect: [err('spec.ports[1].number', 'defined twice', 8), err('spec.ports[1].name', 'defined twice'), err('spec.ports[2].name', 'may use only'), err('spec.ports[2].protocol', 'unsupported protocol')] },
  { name: 'resolution and location enums', kind: 'ServiceEntry', spec: 'hosts: [a.example.com]\nresolution: dns\nlocation: INTERNAL', expect: [err('spec.resolution', 'use one of NONE'), err('spec.location', 'MESH_EXTERNAL')] },
  { name: 'endpoints and workloadSelector', kind: 'ServiceEntry', spec: 'hosts: [a.internal]\nlocation: MESH_INTERNAL\nresolution: STATIC\nports: [{number: 80, name: http, protocol: HTTP}]\nendpoints: [{address: 10.0.0.1}]\nworkloadSelector: {labels: {app: a}}', expect: [err('spec.workloadSelector', 'cannot both be set')] },
  { name: 'NONE forbids endpoints', kind: 'ServiceEntry', spec: 'hosts: [a.example.com]\nports: [{number: 80, name: http, protocol: HTTP}]\nendpoints: [{address: 10.0.0.1}]', expect: [err('spec.endpoints', 'not allowed with resolution NONE')] },
  { name: 'wildcard host with DNS needs endpoints', kind: 'ServiceEntry', spec: 'hosts: ["*.example.com"]\nports: [{number: 443, name: tls, protocol: TLS}]\nresolution: DNS', expect: [err('spec.hosts[0]', 'needs endpoints')] },
  { name: 'DNS_ROUND_ROBIN takes one endpoint', kind: 'ServiceEntry', spec: 'hosts: [a.example.com]\nports: [{number: 80, name: http, protocol: HTTP}]\nresolution: DNS_ROUND_ROBIN\nendpoints: [{address: a1.example.com}, {address: a2.example.com}]', expect: [err('spec.endpoints', 'at most one endpoint')] },
  { name: 'STATIC endpoints need IPs', kind: 'ServiceEntry', spec: 'hosts: [a.internal]\nports: [{number: 80, name: http, protocol: HTTP}]\nresolution: STATIC\nendpoints: [{address: a.example.com}, {ports: {http: 8080}}, {address: 10.0.0.2, ports: {grpc: 9090}, weight: -1, locality: "us//a"}]', expect: [err('spec.endpoints[0].address', 'not an IP address'), err('spec.endpoints[1].address', 'address is required'), err('spec.endpoints[2].ports.grpc', "not one of the ServiceEntry's port names"), err('spec.endpoints[2].weight', 'must not be negative'), err('spec.endpoints[2].locality', 'region/zone')] },
  { name: 'CIDR addresses only with NONE or STATIC', kind: 'ServiceEntry', spec: 'hosts: [a.example.com]\naddresses: [10.0.0.0/24, bogus]\nports: [{number: 80, name: http, protocol: HTTP}]\nresolution: DNS', expect: [err('spec.addresses[0]', 'only with resolution NONE or STATIC'), err('spec.addresses[1]', 'not an IP address')] },
  { name: 'several hosts on a TCP port', kind: 'ServiceEntry', spec: 'hosts: [a.example.com, b.example.com]\nports: [{number: 5432, name: pg, protocol: TCP}]\nresolution: DNS', expect: [err('spec.ports[0].protocol', 'cannot tell several hosts apart')] },
  { name: 'DYNAMIC_DNS', kind: 'ServiceEntry', spec: 'hosts: [a.example.com]\naddresses: [10.0.0.1]\nports: [{number: 5432, name: pg, protocol: TCP}]\nresolution: DYNAMIC_DNS', expect: [err('spec.hosts[0]', 'wildcard hosts'), err('spec.addresses', 'not allowed with resolution DYNAMIC_DNS'), err('spec.ports[0].protocol', 'DYNAMIC_DNS supports only')] },
  { name: 'a WorkloadEntry', kind: 'WorkloadEntry', spec: 'address: vm1.example.com\nlabels: {app: a, version: v1}\nports: {http: 8080}\nlocality: us-east/us-east-1a\nserviceAccount: a-sa', expect: [] },
  { name: 'a broken WorkloadEntry', kind: 'WorkloadEntry', spec: 'address: "unix://relative"\nports: {Http: 0}\nlabels: {app: [a]}', expect: [err('spec.address', 'absolute socket path'), err('spec.ports', 'unix socket'), err('spec.ports.Http', 'may use only'), err('spec.ports.Http', 'at least 1'), err('spec.labels.app', 'must be a string')] },
]);

describe('Kubernetes shapes', () => {
  it('accepts the objects the test helpers write', () => {
    const text = `apiVersion: v1
kind: Service
metadata: {name: svc, namespace: default}
spec:
  selector: {app: svc}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: v1
kind: Pod
metadata: {name: p1, namespace: default, labels: {app: svc}}
status: {podIP: 127.0.0.1}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: p1-slice, namespace: default, labels: {kubernetes.io/service-name: svc}}
addressType: IPv4
ports: [{name: http, port: 8080}]
endpoints:
- addresses: [127.0.0.1]
  conditions: {ready: true}
  targetRef: {kind: Pod, name: p1, namespace: default}
---
apiVersion: v1
kind: Endpoints
metadata: {name: svc, namespace: default}
subsets:
- addresses: [{ip: 10.0.0.1}]
  ports: [{name: http, port: 8080}]
`;
    const { valid, problems } = validateAll(load(text));
    assert.deepEqual(problems.map(formatProblem), []);
    assert.equal(valid.length, 4);
  });
  it('reports wrong types at the field', () => {
    const text = `apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: s, namespace: default}
addressType: IPv4
endpoints:
- addresses: [not-an-ip]
  conditions: {ready: "yes"}
ports: [{port: "8080"}]
---
apiVersion: v1
kind: Service
metadata: {name: svc, namespace: default}
spec:
  ports: [{port: 80}, {port: 81, targetPort: "8081"}]
`;
    const found = load(text).flatMap(validateResource);
    check(found, [
      err('endpoints[0].addresses[0]', 'not an IPv4 address', 6), err('endpoints[0].conditions.ready', 'true or false'), err('ports[0].port', 'must be a number'),
      err('spec.ports[0].name', 'several ports'), err('spec.ports[1].name', 'several ports'), err('spec.ports[1].targetPort', 'quoted number'),
    ]);
  });
});
