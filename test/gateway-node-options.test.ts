// The gateway's Node and V8 settings (src/gateway/node-options.ts): ones this Node accepts, and the
// young generation's growth they are there for.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { GATEWAY_NODE_OPTIONS, GATEWAY_V8_FLAGS } from '../src/gateway/node-options.js';

describe('gateway node options', () => {
  it("the gateway's NODE_OPTIONS and V8 flags are ones this Node accepts", () => {
    // NODE_OPTIONS takes only the V8 flags Node lists; a process with another does not start.
    execFileSync(process.execPath, ['-e', '0'], { env: { ...process.env, NODE_OPTIONS: GATEWAY_NODE_OPTIONS }, stdio: 'pipe' });
    // v8.setFlagsFromString ignores a flag V8 does not know; the command line refuses it.
    execFileSync(process.execPath, [...GATEWAY_V8_FLAGS.split(' '), '-e', '0'], { stdio: 'pipe' });
  });

  it('set at run time as `meshgate gateway` sets them, the young generation goes to its largest at its first growth', () => {
    // Garbage with some survivors, as requests leave: every size the young generation takes on the way.
    const script = [
      `const { setFlagsFromString, getHeapSpaceStatistics } = await import('node:v8');`,
      `setFlagsFromString(${JSON.stringify(GATEWAY_V8_FLAGS)});`,
      `const size = () => getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size;`,
      `const sizes = new Set([size()]);`,
      `let kept = [];`,
      `for (let round = 0; round < 40; round++) {`,
      `  for (let i = 0; i < 100000; i++) { const o = { i, a: [i], s: 'x' + i }; if (i % 50 === 0) kept.push(o); }`,
      `  if (kept.length > 20000) kept = kept.slice(-5000);`,
      `  sizes.add(size());`,
      `}`,
      `console.log(JSON.stringify([...sizes]));`,
    ].join('\n');
    const sizes = JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, NODE_OPTIONS: GATEWAY_NODE_OPTIONS }, encoding: 'utf8' })) as number[];
    const max = Number(/--max-semi-space-size=(\d+)/.exec(GATEWAY_NODE_OPTIONS)![1]) * 2 * 1024 * 1024;
    assert.equal(sizes.at(-1), max, `it grew to both semi-spaces at their largest: ${sizes}`);
    assert.equal(sizes.length, 2, `from its start size straight to that, no size between: ${sizes}`);
  });
});
