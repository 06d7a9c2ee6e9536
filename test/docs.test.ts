// The docs cannot drift from the code: every ```sh block of the README and of each task page under
// docs/tasks/ is run against the demo mesh (ephemeral ports, a copy of gateway-config/, a fresh
// certs folder) and must exit 0, in file order, so a page may save config, wait until the demo has
// applied it, check what happens, and remove it again (circuit breaking, rate limiting). Blocks that are not meant to run say so with another info string
// (console, yaml, text, json); a fence without one is refused, so nothing is skipped by accident.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RunningDemoMesh } from '../src/demo/mesh.js';
import { DEMO_WORKLOADS, type DemoWorkload } from '../src/demo/topology.js';
import { startTestDemoMesh, type TestDemoMesh } from './helpers/demo-mesh.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BIN = join(ROOT, 'bin', 'meshgate.js');
const RUN = 'sh';
// Asynchronous: the demo mesh answers these commands from this very process.
const exec = promisify(execFile);
const NOT_RUN = new Set(['console', 'yaml', 'text', 'json']);

interface Block {
  readonly file: string;
  readonly line: number;
  readonly info: string;
  readonly body: string;
}

function blocks(file: string, text: string): Block[] {
  const out: Block[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(.*)$/.exec(lines[i]!);
    if (!open) continue;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && !lines[i]!.startsWith('```'); i++) body.push(lines[i]!);
    out.push({ file, line: start + 1, info: open[1]!.trim(), body: body.join('\n') });
  }
  return out;
}

async function docFiles(): Promise<string[]> {
  const tasks = (await readdir(join(ROOT, 'docs', 'tasks'))).filter((n) => n.endsWith('.md')).map((n) => join('docs', 'tasks', n));
  return ['README.md', ...tasks.sort()];
}

// The layout page drifts as folders are added: every folder of src/ (two levels down) must be on it.
describe('docs/reference/layout.md', () => {
  it('names every folder of src/', async () => {
    const page = await readFile(join(ROOT, 'docs', 'reference', 'layout.md'), 'utf8');
    const folders: string[] = [];
    for (const top of await readdir(join(ROOT, 'src'), { withFileTypes: true })) {
      if (!top.isDirectory()) continue;
      folders.push(top.name);
      for (const sub of await readdir(join(ROOT, 'src', top.name), { withFileTypes: true })) if (sub.isDirectory()) folders.push(sub.name);
    }
    assert.deepEqual(folders.filter((f) => !new RegExp(`^ +${f}/ `, 'm').test(page)), []);
  });
});

// Relative links of the README and every page under docs/ lead to a file that exists, and a link's
// #anchor to a heading of its page (as GitHub names headings: lower case, punctuation dropped,
// spaces as hyphens, -1, -2 … for repeats), so a renamed section breaks the test, not the reader.
describe('links between the docs', () => {
  const prose = async (page: string) => (await readFile(join(ROOT, page), 'utf8')).replace(/```[\s\S]*?```/g, '');
  const anchors = async (page: string): Promise<Set<string>> => {
    const seen = new Map<string, number>();
    const out = new Set<string>();
    for (const [, heading] of (await prose(page)).matchAll(/^#{1,6}\s+(.*)$/gm)) {
      const slug = heading!.replace(/\[([^\]]*)\]\([^)]*\)/g, '$1').trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-');
      const n = seen.get(slug) ?? 0;
      seen.set(slug, n + 1);
      out.add(n === 0 ? slug : `${slug}-${n}`);
    }
    return out;
  };

  it('resolve to files of the repository, and their anchors to headings', async () => {
    const pages = ['README.md', ...(await readdir(join(ROOT, 'docs'), { recursive: true })).filter((n) => n.endsWith('.md')).map((n) => join('docs', n))];
    const broken: string[] = [];
    for (const page of pages) {
      for (const [, link] of (await prose(page)).matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^(https?:|mailto:)/.test(link!)) continue;
        const [file, anchor] = link!.split('#');
        const target = file ? join(dirname(page), file) : page;
        if (!existsSync(join(ROOT, target))) broken.push(`${page}: ${link}`);
        else if (anchor !== undefined && target.endsWith('.md') && !(await anchors(target)).has(anchor)) broken.push(`${page}: ${link} (no such heading)`);
      }
    }
    assert.deepEqual(broken, []);
  });
});

describe('documentation', () => {
  let all: Block[] = [];
  let demo: TestDemoMesh;
  let mesh: RunningDemoMesh;
  let dir: string;
  let moved: readonly DemoWorkload[] = [];

  before(async () => {
    for (const f of await docFiles()) all.push(...blocks(f, await readFile(join(ROOT, f), 'utf8')));
    // The demo as `npm start` runs it: no metrics or debug ports.
    demo = await startTestDemoMesh({ metricsPort: undefined, debugPort: undefined });
    ({ mesh, workloads: moved } = demo);
    dir = dirname(demo.configDir);
  });

  after(async () => {
    await demo?.close();
  });

  it('marks every code block: sh (run here) or console, yaml, text, json (examples)', () => {
    const unmarked = all.filter((b) => b.info !== RUN && !NOT_RUN.has(b.info)).map((b) => `${b.file}:${b.line} \`\`\`${b.info}`);
    assert.deepEqual(unmarked, []);
    assert.ok(all.filter((b) => b.info === RUN).length >= 8, 'the README and task pages show runnable commands');
  });

  it('runs every sh block of the README and the task pages against the demo', async () => {
    const gw = mesh.gateway;
    const port = gw.listenPorts.get(80)!;
    const httpsPort = gw.listenPorts.get(443)!;
    const failures: string[] = [];
    for (const b of all.filter((x) => x.info === RUN)) {
      let script = b.body
        .replaceAll('npx meshgate', `${JSON.stringify(process.execPath)} ${JSON.stringify(BIN)}`)
        .replaceAll('127.0.0.1:8080', `127.0.0.1:${port}`)
        .replaceAll(':8443', `:${httpsPort}`)
        .replaceAll('127.0.0.1:15000', `127.0.0.1:${gw.adminPort}`)
        .replaceAll('127.0.0.1:15021', `127.0.0.1:${gw.statusPort}`)
        .replaceAll('certs/demo-ca/ca.crt', mesh.demoCaFile)
        .replaceAll('--certs certs', `--certs ${join(dir, 'certs')}`)
        // Pages that change the config (and undo it) change the demo's copy, which it reloads.
        .replaceAll('gateway-config', join(dir, 'config'));
      DEMO_WORKLOADS.forEach((w, i) => {
        script = script.replaceAll(`127.0.0.1:${w.port}`, `127.0.0.1:${moved[i]!.port}`).replaceAll(`127.0.0.1:${w.outboundPort}`, `127.0.0.1:${moved[i]!.outboundPort}`);
      });
      try {
        await exec('bash', ['-e', '-o', 'pipefail', '-c', script], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
      } catch (err) {
        const e = err as { code?: number; stdout?: string; stderr?: string };
        failures.push(`${b.file}:${b.line} exited ${e.code}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`);
      }
    }
    assert.deepEqual(failures, []);
  });
});
