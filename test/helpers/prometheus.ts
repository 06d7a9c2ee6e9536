// A real Prometheus (Debian's `prometheus` package) for tests: started on loopback port 0 (its web
// listener logs `msg="Listening on" address=127.0.0.1:N` with the port it bound, and later that it
// is ready), with a 1 s scrape interval and one static target per proxy, stopped by PID, its data folder removed.
// Where it is not installed the tests that need it are skipped, except in CI, where it must be.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

export function prometheusSkipReason(): string | false {
  const probe = spawnSync('prometheus', ['--version'], { encoding: 'utf8' });
  if (!probe.error && probe.status === 0) return false;
  const why = `prometheus is not installed (${probe.error?.message ?? `exit ${probe.status}`})`;
  if (process.env.CI) throw new Error(`${why}; CI must install it (.ci/run installs prometheus)`);
  return `${why}; install prometheus to run this test`;
}

export interface TestPrometheus {
  readonly url: string;
  /** An instant query; the result vector. */
  query(promql: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]>;
  close(): Promise<void>;
}

export async function startPrometheus(targets: readonly string[], metricsPath = '/stats/prometheus'): Promise<TestPrometheus> {
  const dir = await mkdtemp(join(tmpdir(), 'meshgate-prometheus-'));
  const config = [
    'global: {scrape_interval: 1s, evaluation_interval: 1s}',
    'scrape_configs:',
    '  - job_name: meshgate',
    `    metrics_path: ${metricsPath}`,
    '    static_configs:',
    `      - targets: [${targets.map((t) => `'${t}'`).join(', ')}]`,
  ].join('\n');
  await writeFile(join(dir, 'prometheus.yml'), config + '\n');
  const child: ChildProcess = spawn('prometheus', [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, '--web.listen-address=127.0.0.1:0'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  // Both from its log: the port its web listener bound, then readiness (after the TSDB has opened).
  const started = new Promise<number>((resolve, reject) => {
    let port = 0;
    createInterface({ input: child.stderr! }).on('line', (line) => {
      log = (log + line + '\n').slice(-4000);
      const bound = /msg="Listening on" address=127\.0\.0\.1:(\d+)/.exec(line);
      if (bound) port = Number(bound[1]);
      if (port > 0 && line.includes('msg="Server is ready to receive web requests."')) resolve(port);
    });
    child.once('exit', () => reject(new Error(`prometheus exited before it was ready: ${log}`)));
  });
  const port = await started.catch(async (err: unknown) => {
    await rm(dir, { recursive: true, force: true });
    throw err;
  });
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    async query(promql) {
      const r = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(promql)}`);
      const body = (await r.json()) as { status: string; data?: { result: { metric: Record<string, string>; value: [number, string] }[] }; error?: string };
      if (body.status !== 'success') throw new Error(`query failed: ${body.error}`);
      return body.data!.result;
    },
    async close() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}
