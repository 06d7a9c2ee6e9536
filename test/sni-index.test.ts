// The per-snapshot SNI index picks exactly the server the scoring rule (exact, longest wildcard, `*`,
// first on a tie) picks, for generated server sets and names; and it is compiled once per listener.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { compileSniIndex, sniIndexOf } from '../src/core/routing/sni-index.js';
import { serverForSni } from '../src/core/routing/server-hosts.js';
import type { Listener, ServerConfig } from '../src/core/routing/types.js';

function server(i: number, hosts: string[]): ServerConfig {
  return { gateway: 'default/gw', serverIndex: i, port: 443, portName: `https-${i}`, protocol: 'HTTPS', hosts, scopedHosts: [] };
}

const label = fc.constantFrom('a', 'b', 'api', 'example', 'com');
const name = fc.array(label, { minLength: 1, maxLength: 4 }).map((ls) => ls.join('.'));
const pattern = fc.oneof(name, name.map((n) => `*.${n}`), fc.constant('*'));

describe('SNI index', () => {
  it('agrees with the scoring rule on generated servers and names', () => {
    fc.assert(
      fc.property(fc.array(fc.array(pattern, { minLength: 1, maxLength: 3 }), { minLength: 1, maxLength: 5 }), fc.option(name, { nil: undefined }), (hostSets, sni) => {
        const servers = hostSets.map((h, i) => server(i, h));
        assert.equal(compileSniIndex(servers).lookup(sni), serverForSni(servers, sni));
      }),
      { seed: 8, numRuns: 2000 },
    );
  });

  it('a table of the usual cases', () => {
    const servers = [server(0, ['*']), server(1, ['*.example.com']), server(2, ['api.example.com']), server(3, ['*.b.example.com']), server(4, ['api.example.com'])];
    const index = compileSniIndex(servers);
    assert.equal(index.lookup('api.example.com')?.serverIndex, 2);
    assert.equal(index.lookup('x.example.com')?.serverIndex, 1);
    assert.equal(index.lookup('x.b.example.com')?.serverIndex, 3);
    assert.equal(index.lookup('example.com')?.serverIndex, 0);
    assert.equal(index.lookup(undefined)?.serverIndex, 0);
  });

  it('gives the first `*` server to every name and to none when `*` is all there is', () => {
    const index = compileSniIndex([server(0, ['*']), server(1, ['*'])]);
    for (const sni of ['bench.example.com', 'a.b.c', 'com', undefined]) assert.equal(index.lookup(sni)?.serverIndex, 0);
  });

  it('is compiled once per listener object and skips non-TLS servers', () => {
    const listener = { servers: [{ ...server(0, ['a.com']), protocol: 'HTTP' }, server(1, ['a.com'])] } as unknown as Listener;
    const index = sniIndexOf(listener);
    assert.equal(sniIndexOf(listener), index);
    assert.equal(index.servers.length, 1);
    assert.equal(index.lookup('a.com')?.serverIndex, 1);
  });
});
