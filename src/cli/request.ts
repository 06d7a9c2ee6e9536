// `meshgate request METHOD PATH`: one HTTP request to the sidecar's own local ports, Istio's
// `pilot-agent request`. Injection runs it as a native sidecar's preStop hook (`meshgate request
// --debug-port 15020 POST drain`); a person can use it with kubectl exec where the image has no curl.
// Only the sidecar's own ports on localhost: it is no general HTTP client. The answer's body goes to
// standard output as it came; exit 0 for a 2xx answer, 1 otherwise.

import { request } from 'node:http';
import { parse } from './options.js';
import { UsageError } from './main.js';

/** Admin, agent and status ports, the local ports of a sidecar worth asking. */
const ALLOWED_PORTS: readonly number[] = [15000, 15020, 15021];

export const REQUEST_HELP = `usage: meshgate request [--debug-port N] METHOD PATH

Makes one HTTP request to the sidecar on localhost and prints the answer's body: exit 0 when it is
2xx. Injection runs \`meshgate request --debug-port 15020 POST drain\` as a native sidecar's preStop
hook (Istio's pilot-agent request).

  --debug-port N    the port to ask: ${ALLOWED_PORTS.join(', ')} (default 15000, the admin port)`;

export async function runRequestCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { 'debug-port': { type: 'string' }, help: { type: 'boolean', short: 'h' } }, true);
  if (values.help) {
    console.log(REQUEST_HELP);
    return 0;
  }
  const port = Number(values['debug-port'] ?? 15000);
  if (!ALLOWED_PORTS.includes(port)) throw new UsageError(`--debug-port: ${values['debug-port']} is not one of ${ALLOWED_PORTS.join(', ')}`);
  const [method, path] = positionals;
  if (!method || path === undefined || positionals.length > 2) throw new UsageError('METHOD and PATH are required (e.g. POST drain)');
  if (!/^[A-Z]+$/.test(method)) throw new UsageError(`METHOD: '${method}' is not an HTTP method`);
  const target = `/${path.replace(/^\/+/, '')}`;
  return new Promise((resolve) => {
    const req = request({ host: 'localhost', port, path: target, method, timeout: 60_000 }, (res) => {
      res.pipe(process.stdout, { end: false });
      res.once('end', () => resolve(res.statusCode !== undefined && res.statusCode >= 200 && res.statusCode < 300 ? 0 : 1));
    });
    req.once('timeout', () => req.destroy(new Error('no answer in 60 s')));
    req.once('error', (err) => {
      console.error(`meshgate request: ${method} localhost:${port}${target}: ${err.message}`);
      resolve(1);
    });
    req.end();
  });
}
