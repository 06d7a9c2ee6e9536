// `meshgate dashboard`: where the mesh dashboard is (the control plane's debug port, or a gateway's
// admin port), printed, and opened in a browser when this machine has one to open.

import { spawn } from 'node:child_process';
import { parse, parsePort } from './options.js';

export const DASHBOARD_HELP = `usage: meshgate dashboard [--port N] [--host ADDR] [--no-open]

Prints the URL of the live service graph and opens it in a browser if one can be started
(xdg-open / open). The control plane serves it on its debug port (default 15014; in a cluster:
kubectl -n istio-system port-forward deploy/meshgate-control 15014:15013); a gateway run without a
control plane serves its own traffic's graph on its admin port at /dashboard (--port 15000).

  --port N      the port serving the dashboard (default 15014)
  --host ADDR   its address (default 127.0.0.1)
  --no-open     only print the URL`;

export async function runDashboard(argv: string[]): Promise<number> {
  const { values } = parse(argv, { port: { type: 'string' }, host: { type: 'string' }, 'no-open': { type: 'boolean' }, help: { type: 'boolean', short: 'h' } });
  if (values.help) {
    console.log(DASHBOARD_HELP);
    return 0;
  }
  const port = parsePort(values.port, 15014, '--port');
  const url = `http://${values.host ?? '127.0.0.1'}:${port}/${port === 15000 ? 'dashboard' : ''}`;
  const reachable = await fetch(url, { signal: AbortSignal.timeout(2000) }).then((r) => r.ok, () => false);
  console.log(url);
  if (!reachable) console.error(`nothing answers at ${url} yet: is the control plane (or the demo) running?`);
  if (!values['no-open'] && reachable) {
    const opener = process.platform === 'darwin' ? 'open' : process.platform === 'win32' ? 'explorer' : 'xdg-open';
    const child = spawn(opener, [url], { stdio: 'ignore', detached: true });
    child.on('error', () => undefined); // no browser here: the URL above is the answer
    child.unref();
  }
  return reachable ? 0 : 1;
}
