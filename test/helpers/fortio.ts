// A stand-in for `fortio load -c C -qps 0 -n N URL`, the load Istio's tasks run from a client pod:
// C connections, each kept alive and sending its share of the N requests one after another, at
// full speed, through the client's sidecar (its outbound port, as its traffic is captured).

import { Agent, request } from 'node:http';

export interface FortioResult {
  /** Requests per status code (0: the connection failed), as fortio's `Code 200 : 19` lines. */
  readonly codes: ReadonlyMap<number, number>;
  /** The bodies of the answers that were not 200. */
  readonly failures: readonly string[];
}

export async function fortioLoad(proxyPort: number, url: string, opts: { connections: number; requests: number }): Promise<FortioResult> {
  const codes = new Map<number, number>();
  const failures: string[] = [];
  const u = new URL(url);
  const one = (agent: Agent): Promise<void> =>
    new Promise((resolve) => {
      const req = request({ host: '127.0.0.1', port: proxyPort, path: url, agent, headers: { host: u.host, 'user-agent': 'fortio.org/fortio-1.69.0' } }, (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (s: string) => (text += s));
        res.on('end', () => {
          const code = res.statusCode ?? 0;
          codes.set(code, (codes.get(code) ?? 0) + 1);
          if (code !== 200) failures.push(text);
          resolve();
        });
      });
      req.on('error', (err) => {
        codes.set(0, (codes.get(0) ?? 0) + 1);
        failures.push(err.message);
        resolve();
      });
      req.end();
    });
  const worker = async (share: number): Promise<void> => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    for (let i = 0; i < share; i++) await one(agent);
    agent.destroy();
  };
  // fortio splits -n evenly over -c, the first threads taking the remainder.
  const base = Math.floor(opts.requests / opts.connections);
  await Promise.all(Array.from({ length: opts.connections }, (_, i) => worker(base + (i < opts.requests % opts.connections ? 1 : 0))));
  return { codes, failures };
}
