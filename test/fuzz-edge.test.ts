// Property-based fuzz test of the gateway's edge (helpers/fuzz-requests.ts has the requests and what
// is asserted): plaintext and TLS HTTP/1, HTTP/2 over TLS, at a gateway whose routes deny /admin*
// and /user/admin (a 403 direct response) and whose AuthorizationPolicy denies /private*. Every
// upstream request must carry the gateway's own x-forwarded-for.

import { after, before, describe, it } from 'node:test';
import { DEFAULT_HTTP_LIMITS } from '../src/core/proxy/http-limits.js';
import { startUpstream, type Upstream } from './helpers/upstream.js';
import { startTargetGateway, type TargetGateway } from './helpers/target-config.js';
import { fuzzHttp1, fuzzHttp2, type FuzzTarget } from './helpers/fuzz-requests.js';

describe('fuzz: malformed HTTP/1 and HTTP/2 requests at the gateway', () => {
  let app: Upstream;
  let target: TargetGateway;
  let fuzz: FuzzTarget;

  before(async () => {
    app = await startUpstream('app');
    target = await startTargetGateway(app.port, { ...DEFAULT_HTTP_LIMITS, requestHeadersTimeoutMs: 2000, idleTimeoutMs: 2000 });
    fuzz = { app, plain: target.plain, tlsPort: target.tlsPort, tls: target.tls, h2: target.tls, fromProxy: (e) => String(e.headers['x-forwarded-for'] ?? '').endsWith('127.0.0.1') };
  });

  after(async () => {
    await target?.close();
    await app?.close();
  });

  it('HTTP/1 over plaintext and TLS: no crash, nothing smuggled, no denied path upstream', () => fuzzHttp1(fuzz, 250));

  it('HTTP/2 with odd headers and pseudo-headers: no crash, one upstream request per stream at most, no denied path upstream', () => fuzzHttp2(fuzz, 200));
});
