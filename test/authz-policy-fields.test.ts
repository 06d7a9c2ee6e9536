// Unit tables for every AuthorizationPolicy field and value form (docs/security.md): sources, JWT
// attributes, operations, how from/to/rules combine, and `when` keys. YAML in, decisions out.

import { allowedBy, allowRules, ALLOWED, ap, authzTable, DENIED, deniedBy, http, PLAINTEXT, tcp } from './helpers/security-policy-table.js';

// ---------------------------------------------------------------- sources

allowRules('principals: exact, prefix, suffix, and * needs mTLS', `- from: [{source: {principals: [cluster.local/ns/shop/sa/productpage, "cluster.local/ns/web/*", "*/sa/admin"]}}]`, [
  ['exact', http(), true],
  ['prefix', http({ principal: 'cluster.local/ns/web/sa/frontend' }), true],
  ['suffix', http({ principal: 'cluster.local/ns/ops/sa/admin' }), true],
  ['none of them', http({ principal: 'cluster.local/ns/shop/sa/ratings' }), false],
  ['plaintext has no principal', http(PLAINTEXT), false],
]);

allowRules('principals: ["*"] does not match plaintext', `- from: [{source: {principals: ["*"]}}]`, [
  ['any mTLS peer', http({ principal: 'other.domain/ns/x/sa/y' }), true],
  ['plaintext', http(PLAINTEXT), false],
  ['an empty principal counts as none', http({ principal: '' }), false],
]);

allowRules('notPrincipals: ["*"] matches plaintext only', `- from: [{source: {notPrincipals: ["*"]}}]`, [
  ['mTLS peer', http(), false],
  ['plaintext', http(PLAINTEXT), true],
]);

allowRules('namespaces over the principal', `- from: [{source: {namespaces: [shop, "team-*", "*-dev"]}}]`, [
  ['own namespace', http(), true],
  ['prefix', http({ principal: 'cluster.local/ns/team-a/sa/x' }), true],
  ['suffix', http({ principal: 'cluster.local/ns/web-dev/sa/x' }), true],
  ['a namespace that only starts like one', http({ principal: 'cluster.local/ns/shopping/sa/x' }), false],
  ['a service account named like the namespace', http({ principal: 'cluster.local/ns/web/sa/shop' }), false],
  ['plaintext', http(PLAINTEXT), false],
]);

allowRules('namespaces: ["*"] and notNamespaces', `- from: [{source: {namespaces: ["*"], notNamespaces: [kube-system]}}]`, [
  ['any mTLS namespace', http(), true],
  ['but not kube-system', http({ principal: 'cluster.local/ns/kube-system/sa/x' }), false],
  ['plaintext', http(PLAINTEXT), false],
]);

allowRules('serviceAccounts: ns/sa, or sa in the policy namespace', `- from: [{source: {serviceAccounts: [productpage, web/my.frontend]}}]`, [
  ['sa in the policy namespace', http(), true],
  ['ns/sa', http({ principal: 'cluster.local/ns/web/sa/my.frontend' }), true],
  ['dots are literal', http({ principal: 'cluster.local/ns/web/sa/myxfrontend' }), false],
  ['same sa, other namespace', http({ principal: 'cluster.local/ns/web/sa/productpage' }), false],
  ['a longer sa name', http({ principal: 'cluster.local/ns/shop/sa/productpage-v2' }), false],
  ['another trust domain', http({ principal: 'example.org/ns/shop/sa/productpage' }), true],
  ['plaintext', http(PLAINTEXT), false],
]);

authzTable('serviceAccounts without a namespace in a root-namespace policy mean the root namespace', [
  ap('allow', 'istio-system', 'selector: {matchLabels: {app: reviews}}\nrules: [{from: [{source: {serviceAccounts: [productpage]}}]}]'),
], [
  ['productpage in shop is not istio-system/productpage', http(), DENIED],
  ['istio-system/productpage', http({ principal: 'cluster.local/ns/istio-system/sa/productpage' }), allowedBy('istio-system/allow')],
]);

allowRules('trustDomains', `- from: [{source: {trustDomains: [cluster.local]}}]`, [
  ['own trust domain', http(), true],
  ['another one', http({ principal: 'example.org/ns/shop/sa/productpage' }), false],
]);

allowRules('ipBlocks: CIDR and single addresses, IPv4 and IPv6', `- from: [{source: {ipBlocks: [10.0.0.0/16, 192.168.1.10, "2001:db8::/32", "fd00::1"], notIpBlocks: [10.0.9.0/24]}}]`, [
  ['inside the IPv4 block', http(), true],
  ['an IPv4-mapped IPv6 peer counts as IPv4', http({ sourceIp: '::ffff:10.0.3.4' }), true],
  ['carved out by notIpBlocks', http({ sourceIp: '10.0.9.1' }), false],
  ['outside', http({ sourceIp: '10.1.0.1' }), false],
  ['single IPv4 address', http({ sourceIp: '192.168.1.10' }), true],
  ['its neighbour', http({ sourceIp: '192.168.1.11' }), false],
  ['inside the IPv6 block', http({ sourceIp: '2001:db8:1::5' }), true],
  ['single IPv6 address, written differently', http({ sourceIp: 'fd00:0:0::0001' }), true],
  ['outside IPv6', http({ sourceIp: '2001:db9::1' }), false],
  ['the direct peer, not the remote client', http({ sourceIp: '172.16.0.1', remoteIp: '10.0.0.5' }), false],
  ['an address that cannot be read is in no block', http({ sourceIp: 'not-an-ip' }), false],
]);

allowRules('an IPv6 block never matches an IPv4 peer', `- from: [{source: {ipBlocks: ["::/0"]}}]`, [
  ['IPv4 peer', http({ sourceIp: '1.2.3.4' }), false],
  ['IPv6 peer', http({ sourceIp: '::1' }), true],
]);

allowRules('remoteIpBlocks: the original client, defaulting to the peer', `- from: [{source: {remoteIpBlocks: [203.0.113.0/24], notRemoteIpBlocks: [203.0.113.66]}}]`, [
  ['remote client inside', http({ sourceIp: '10.0.0.5', remoteIp: '203.0.113.7' }), true],
  ['carved out', http({ remoteIp: '203.0.113.66' }), false],
  ['no remote address: the peer stands in', http({ sourceIp: '203.0.113.8' }), true],
  ['peer inside, remote outside', http({ sourceIp: '203.0.113.8', remoteIp: '198.51.100.1' }), false],
]);

allowRules('requestPrincipals and request.auth: read from the verified JWT (RequestAuthentication)', `- from: [{source: {requestPrincipals: ["https://issuer.example/*"]}}]\n  when: [{key: "request.auth.claims[groups]", values: [admin]}]\n- from: [{source: {requestPrincipals: ["https://other.example/bob"]}}]\n  when: [{key: request.auth.audiences, values: ["api.*"]}, {key: "request.auth.claims[org][team]", values: [blue]}, {key: request.auth.presenter, values: [web]}]`, [
  ['no token: no principal', http(), false],
  ['TCP: never', tcp(), false],
  ['admin in the groups list', http({ auth: { principal: 'https://issuer.example/alice', audiences: [], claims: { groups: ['dev', 'admin'] } } }), true],
  ['not in the group', http({ auth: { principal: 'https://issuer.example/alice', audiences: [], claims: { groups: ['dev'] } } }), false],
  ['nested claim, audience and presenter', http({ auth: { principal: 'https://other.example/bob', audiences: ['web', 'api.shop'], presenter: 'web', claims: { org: { team: 'blue' } } } }), true],
  ['nested claim differs', http({ auth: { principal: 'https://other.example/bob', audiences: ['api.shop'], presenter: 'web', claims: { org: { team: 'red' } } } }), false],
]);

allowRules('notRequestPrincipals ["*"]: requests without a token', `- from: [{source: {notRequestPrincipals: ["*"]}}]`, [
  ['no token', http(), true],
  ['a token', http({ auth: { principal: 'iss/sub', audiences: [], claims: {} } }), false],
]);

authzTable('requestPrincipals in DENY: every request carries no token', [
  ap('deny-anonymous', 'shop', 'action: DENY\nrules: [{from: [{source: {notRequestPrincipals: ["*"]}}], to: [{operation: {paths: ["/private/*"]}}]}]'),
  ap('deny-user', 'shop', 'action: DENY\nrules: [{from: [{source: {requestPrincipals: ["issuer/bob"]}}]}]'),
], [
  ['no token on a private path', http({ path: '/private/a' }), deniedBy('shop/deny-anonymous')],
  ['public path', http({ path: '/public' }), ALLOWED],
]);

// ---------------------------------------------------------------- operations

allowRules('hosts: case-insensitive, and the port is part of the host', `- to: [{operation: {hosts: [reviews.example.com, "api.example.com:*", "*.shop.local"], notHosts: ["admin.shop.local"]}}]`, [
  ['exact', http({ host: 'reviews.example.com' }), true],
  ['different case', http({ host: 'Reviews.EXAMPLE.com' }), true],
  ['with a port it is another host', http({ host: 'reviews.example.com:8080' }), false],
  ['prefix with any port', http({ host: 'api.example.com:8443' }), true],
  ['the prefix needs the colon', http({ host: 'api.example.com' }), false],
  ['suffix', http({ host: 'a.b.shop.local' }), true],
  ['suffix, but excluded', http({ host: 'admin.shop.local' }), false],
  ['no host', http({ host: '' }), false],
]);

allowRules('ports and notPorts: the destination port', `- to: [{operation: {ports: ["9080", "9443"]}}]\n- to: [{operation: {notPorts: ["9080", "9443", "15000"]}}]`, [
  ['listed', http(), true],
  ['any other port but the excluded', http({ destinationPort: 8000 }), true],
  ['excluded', http({ destinationPort: 15000 }), false],
  ['TCP on a listed port', tcp({ destinationPort: 9443 }), true],
]);

allowRules('methods: exact and case-sensitive', `- to: [{operation: {methods: [GET, HEAD]}}]`, [
  ['GET', http(), true],
  ['HEAD', http({ method: 'HEAD' }), true],
  ['get', http({ method: 'get' }), false],
  ['POST', http({ method: 'POST' }), false],
]);

allowRules('notMethods', `- to: [{operation: {notMethods: [DELETE]}}]`, [
  ['GET', http(), true],
  ['DELETE', http({ method: 'DELETE' }), false],
]);

allowRules('paths: /admin/* does not match /admin', `- to: [{operation: {paths: ["/admin/*"]}}]`, [
  ['/admin', http({ path: '/admin' }), false],
  ['/admin/', http({ path: '/admin/' }), true],
  ['/admin/users', http({ path: '/admin/users' }), true],
  ['/administrator', http({ path: '/administrator' }), false],
]);

allowRules('paths: prefix, suffix, exact; the query never counts', `- to: [{operation: {paths: ["/admin*", "*.png", /health], notPaths: [/admin/secret]}}]`, [
  ['/admin', http({ path: '/admin' }), true],
  ['/administrator', http({ path: '/administrator' }), true],
  ['excluded', http({ path: '/admin/secret' }), false],
  ['suffix', http({ path: '/img/logo.png' }), true],
  ['exact', http({ path: '/health' }), true],
  ['exact, with a query left on by mistake', http({ path: '/health?full=1' }), true],
  ['case matters', http({ path: '/Health' }), false],
]);

allowRules('paths: URI templates', `- to: [{operation: {paths: ["/api/{*}/items", "/static/{**}", "/files/{*}.pdf"]}}]`, [
  ['{*} is one segment', http({ path: '/api/v1/items' }), true],
  ['{*} is not two segments', http({ path: '/api/v1/x/items' }), false],
  ['{*} is not an empty segment', http({ path: '/api//items' }), false],
  ['{*} takes "=", as Envoy\'s pchar class', http({ path: '/api/a=b/items' }), true],
  ['{*} does not take "[" (nor does Envoy)', http({ path: '/api/a[b/items' }), false],
  ['{**} takes any number of segments', http({ path: '/static/css/site/a.css' }), true],
  ['{**} takes none', http({ path: '/static/' }), true],
  ['{**} still needs the slash', http({ path: '/static' }), false],
  ['operator with a suffix', http({ path: '/files/report.pdf' }), true],
  ['wrong suffix', http({ path: '/files/report.txt' }), false],
]);

// ---------------------------------------------------------------- combining

allowRules('from and to are ORed lists, fields are ANDed, values are ORed', `- from:
  - source: {namespaces: [shop], ipBlocks: [10.0.0.0/8]}
  - source: {principals: [cluster.local/ns/web/sa/frontend]}
  to:
  - operation: {methods: [GET], paths: [/reviews*]}
  - operation: {methods: [POST], paths: [/ratings]}`, [
  ['first source, first operation', http({ path: '/reviews/1' }), true],
  ['first source, second operation', http({ method: 'POST', path: '/ratings' }), true],
  ['first source, no operation matches', http({ method: 'POST', path: '/reviews/1' }), false],
  ['first source needs both namespace and IP', http({ sourceIp: '192.168.0.1', path: '/reviews' }), false],
  ['second source', http({ principal: 'cluster.local/ns/web/sa/frontend', sourceIp: '192.168.0.1', path: '/reviews' }), true],
  ['no source matches', http({ principal: 'cluster.local/ns/web/sa/other', path: '/reviews' }), false],
]);

allowRules('rules are ORed', `- to: [{operation: {paths: [/a]}}]\n- to: [{operation: {paths: [/b]}}]`, [
  ['/a', http({ path: '/a' }), true],
  ['/b', http({ path: '/b' }), true],
  ['/c', http({ path: '/c' }), false],
]);

// ---------------------------------------------------------------- when

allowRules('when: headers (name case-insensitive, * is presence), all conditions ANDed', `- when:
  - {key: "request.headers[X-User]", values: [alice, "adm-*"], notValues: [adm-root]}
  - {key: "request.headers[x-trace]", values: ["*"]}`, [
  ['both present', http({ headers: { 'x-user': 'alice', 'x-trace': '1' } }), true],
  ['an empty header is present', http({ headers: { 'x-user': 'alice', 'x-trace': '' } }), true],
  ['missing header', http({ headers: { 'x-user': 'alice' } }), false],
  ['prefix', http({ headers: { 'x-user': 'adm-bob', 'x-trace': '1' } }), true],
  ['excluded by notValues', http({ headers: { 'x-user': 'adm-root', 'x-trace': '1' } }), false],
  ['other value', http({ headers: { 'x-user': 'mallory', 'x-trace': '1' } }), false],
  ['repeated header values are joined', http({ headers: { 'x-user': ['alice', 'bob'] as unknown as string, 'x-trace': '1' } }), false],
]);

allowRules('when: request.headers[host] reads :authority', `- when: [{key: "request.headers[host]", values: ["reviews.*"]}]`, [
  ['host', http({ host: 'reviews.shop:9080' }), true],
  ['host is case-sensitive here', http({ host: 'Reviews.shop' }), false],
]);

allowRules('when: addresses and ports', `- when:
  - {key: source.ip, values: [10.0.0.0/8]}
  - {key: remote.ip, notValues: [198.51.100.0/24]}
  - {key: destination.ip, values: ["10.0.1.7"]}
  - {key: destination.port, values: ["9080", "3306"]}`, [
  ['all hold', http(), true],
  ['source.ip', http({ sourceIp: '192.168.0.1' }), false],
  ['remote.ip excluded', http({ remoteIp: '198.51.100.9' }), false],
  ['destination.ip', http({ destinationIp: '10.0.1.8' }), false],
  ['no destination address known', http({ destinationIp: undefined }), false],
  ['destination.port', http({ destinationPort: 9081 }), false],
  ['all hold on TCP', tcp(), true],
]);

allowRules('when: peer identity', `- when:
  - {key: source.namespace, values: [shop]}
  - {key: source.principal, values: ["*/sa/productpage"]}
  - {key: source.serviceAccount, values: [shop/productpage]}
  - {key: source.trustDomain, values: [cluster.local]}`, [
  ['productpage', http(), true],
  ['another sa', http({ principal: 'cluster.local/ns/shop/sa/ratings' }), false],
  ['plaintext', http(PLAINTEXT), false],
]);

allowRules('when: connection.sni', `- when: [{key: connection.sni, values: ["*.example.com"]}]`, [
  ['matching SNI', tcp({ sni: 'db.example.com' }), true],
  ['other SNI', tcp({ sni: 'db.example.org' }), false],
  ['no SNI', tcp(), false],
  ['HTTP over TLS with SNI', http({ sni: 'api.example.com' }), true],
]);
