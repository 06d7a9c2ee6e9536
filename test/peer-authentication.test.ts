// Unit tables for PeerAuthentication composition (docs/security.md: scope, levels, oldest wins, UNSET
// inherits, port-level modes). YAML in, the mode of one workload port out.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { compilePeerAuthentication, type WorkloadRef } from '../src/core/policy/peer-authentication.js';
import { ap, created, load, pa, REVIEWS } from './helpers/security-policy-table.js';

describe('PeerAuthentication: the mode of one workload port (docs/security.md)', () => {
  interface Case {
    readonly name: string;
    readonly docs: readonly string[];
    readonly workload?: WorkloadRef;
    readonly root?: string;
    /** [port, mode, deciding policy] */
    readonly expect: ReadonlyArray<readonly [number, string, string | undefined]>;
  }
  const cases: Case[] = [
    { name: 'no policy at all is PERMISSIVE', docs: [], expect: [[9080, 'PERMISSIVE', undefined]] },
    { name: 'mesh-wide STRICT', docs: [pa('default', 'istio-system', 'mtls: {mode: STRICT}')], expect: [[9080, 'STRICT', 'PeerAuthentication istio-system/default']] },
    {
      name: 'namespace overrides mesh',
      docs: [pa('default', 'istio-system', 'mtls: {mode: STRICT}'), pa('ns', 'shop', 'mtls: {mode: PERMISSIVE}')],
      expect: [[9080, 'PERMISSIVE', 'PeerAuthentication shop/ns']],
    },
    {
      name: 'UNSET namespace inherits the mesh',
      docs: [pa('default', 'istio-system', 'mtls: {mode: STRICT}'), pa('ns', 'shop', 'mtls: {mode: UNSET}')],
      expect: [[9080, 'STRICT', 'PeerAuthentication istio-system/default']],
    },
    {
      name: 'a namespace policy without mtls inherits too',
      docs: [pa('default', 'istio-system', 'mtls: {mode: DISABLE}'), pa('ns', 'shop', '{}')],
      expect: [[9080, 'DISABLE', 'PeerAuthentication istio-system/default']],
    },
    {
      name: 'UNSET everywhere is PERMISSIVE',
      docs: [pa('default', 'istio-system', 'mtls: {mode: UNSET}'), pa('ns', 'shop', 'mtls: {}')],
      expect: [[9080, 'PERMISSIVE', undefined]],
    },
    {
      name: 'workload overrides namespace',
      docs: [pa('ns', 'shop', 'mtls: {mode: DISABLE}'), pa('reviews', 'shop', 'selector: {matchLabels: {app: reviews}}\nmtls: {mode: STRICT}')],
      expect: [[9080, 'STRICT', 'PeerAuthentication shop/reviews']],
    },
    {
      name: 'a selector that does not match leaves the namespace policy',
      docs: [pa('ns', 'shop', 'mtls: {mode: DISABLE}'), pa('ratings', 'shop', 'selector: {matchLabels: {app: ratings}}\nmtls: {mode: STRICT}')],
      expect: [[9080, 'DISABLE', 'PeerAuthentication shop/ns']],
    },
    {
      name: 'a selector policy in another namespace does not apply',
      docs: [pa('reviews', 'web', 'selector: {matchLabels: {app: reviews}}\nmtls: {mode: STRICT}'), pa('ns', 'web', 'mtls: {mode: STRICT}')],
      expect: [[9080, 'PERMISSIVE', undefined]],
    },
    {
      name: 'selector policies in the root namespace are ignored',
      docs: [pa('default', 'istio-system', 'mtls: {mode: PERMISSIVE}'), pa('reviews', 'istio-system', 'selector: {matchLabels: {app: reviews}}\nmtls: {mode: STRICT}')],
      expect: [[9080, 'PERMISSIVE', 'PeerAuthentication istio-system/default']],
    },
    {
      name: '... also for a workload that lives in the root namespace',
      workload: { namespace: 'istio-system', labels: { app: 'reviews' } },
      docs: [pa('reviews', 'istio-system', 'selector: {matchLabels: {app: reviews}}\nmtls: {mode: STRICT}')],
      expect: [[9080, 'PERMISSIVE', undefined]],
    },
    {
      name: 'in the root namespace a namespace-wide policy is the mesh level',
      workload: { namespace: 'istio-system', labels: { app: 'x' } },
      docs: [pa('default', 'istio-system', 'mtls: {mode: STRICT}'), pa('other', 'shop', 'mtls: {mode: DISABLE}')],
      expect: [[9080, 'STRICT', 'PeerAuthentication istio-system/default']],
    },
    {
      name: 'an empty selector is namespace-wide',
      docs: [pa('ns', 'shop', 'selector: {matchLabels: {}}\nmtls: {mode: STRICT}')],
      expect: [[9080, 'STRICT', 'PeerAuthentication shop/ns']],
    },
    {
      name: 'oldest namespace policy wins (creationTimestamp beats file order)',
      docs: [
        pa('newer', 'shop', 'mtls: {mode: DISABLE}', created('2024-05-02T00:00:00Z')),
        pa('older', 'shop', 'mtls: {mode: STRICT}', created('2024-05-01T00:00:00Z')),
      ],
      expect: [[9080, 'STRICT', 'PeerAuthentication shop/older']],
    },
    {
      name: 'without timestamps, file order stands in for age',
      docs: [pa('first', 'shop', 'mtls: {mode: DISABLE}'), pa('second', 'shop', 'mtls: {mode: STRICT}')],
      expect: [[9080, 'DISABLE', 'PeerAuthentication shop/first']],
    },
    {
      name: 'the oldest workload policy alone counts, even when it is UNSET',
      docs: [
        pa('ns', 'shop', 'mtls: {mode: PERMISSIVE}'),
        pa('old', 'shop', 'selector: {matchLabels: {app: reviews}}\nmtls: {mode: UNSET}', created('2024-01-01T00:00:00Z')),
        pa('new', 'shop', 'selector: {matchLabels: {version: v1}}\nmtls: {mode: STRICT}\nportLevelMtls: {"8080": {mode: DISABLE}}', created('2024-02-01T00:00:00Z')),
      ],
      expect: [[9080, 'PERMISSIVE', 'PeerAuthentication shop/ns'], [8080, 'PERMISSIVE', 'PeerAuthentication shop/ns']],
    },
    {
      name: 'portLevelMtls beats the workload mode on its port only',
      docs: [pa('reviews', 'shop', 'selector: {matchLabels: {app: reviews}}\nmtls: {mode: STRICT}\nportLevelMtls:\n  8080: {mode: DISABLE}\n  8443: {mode: PERMISSIVE}')],
      expect: [[8080, 'DISABLE', 'PeerAuthentication shop/reviews'], [8443, 'PERMISSIVE', 'PeerAuthentication shop/reviews'], [9080, 'STRICT', 'PeerAuthentication shop/reviews']],
    },
    {
      name: 'an UNSET port inherits the workload result, wherever it came from',
      docs: [
        pa('default', 'istio-system', 'mtls: {mode: STRICT}'),
        pa('reviews', 'shop', 'selector: {matchLabels: {app: reviews}}\nportLevelMtls:\n  8080: {mode: UNSET}\n  9000: {mode: DISABLE}'),
      ],
      expect: [[8080, 'STRICT', 'PeerAuthentication istio-system/default'], [9000, 'DISABLE', 'PeerAuthentication shop/reviews'], [9080, 'STRICT', 'PeerAuthentication istio-system/default']],
    },
    {
      name: 'a different root namespace',
      root: 'mesh-root',
      docs: [pa('default', 'mesh-root', 'mtls: {mode: STRICT}'), pa('ignored', 'mesh-root', 'selector: {matchLabels: {app: reviews}}\nmtls: {mode: DISABLE}'), pa('not-root', 'istio-system', 'mtls: {mode: DISABLE}')],
      expect: [[9080, 'STRICT', 'PeerAuthentication mesh-root/default']],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const policy = compilePeerAuthentication(load(c.docs), c.workload ?? REVIEWS, c.root);
      for (const [port, mode, source] of c.expect) {
        assert.equal(policy.modeFor(port), mode, `mode of port ${port}`);
        assert.equal(policy.sourceFor(port), source, `source of port ${port}`);
      }
    });
  }
  it('other kinds are not read', () => {
    const policy = compilePeerAuthentication(load([ap('strict', 'shop', 'rules: [{}]')]), REVIEWS);
    assert.equal(policy.modeFor(1), 'PERMISSIVE');
  });
});
