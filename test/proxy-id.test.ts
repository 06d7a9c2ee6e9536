// Every proxy process has a name of its own on the configuration stream: two gateways on one host, or
// two replicas of one workload, used to share one and evict each other's stream in a loop.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { proxyIdOf } from '../src/core/sources/control-plane-source.js';

const MODULE = fileURLToPath(new URL('../src/core/sources/control-plane-source.js', import.meta.url));

function idInAnotherProcess(): string {
  const script = `const { proxyIdOf } = await import(${JSON.stringify(MODULE)}); process.stdout.write(proxyIdOf('gateway-w0', 'istio-system'));`;
  return execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
}

describe('proxy ids', () => {
  it('name the workload and namespace, and differ between processes', () => {
    const here = proxyIdOf('gateway-w0', 'istio-system');
    const [a, b] = [idInAnotherProcess(), idInAnotherProcess()];
    assert.ok(here.startsWith('gateway-w0.istio-system:'), here);
    assert.notEqual(a, b);
    assert.notEqual(a, here);
  });

  it('use only the characters the control plane accepts', () => {
    assert.match(proxyIdOf('user-service', 'default'), /^[A-Za-z0-9._:-]+$/);
  });
});
