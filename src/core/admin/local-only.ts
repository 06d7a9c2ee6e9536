// What the loopback-only management servers (a proxy's admin port, the control plane's debug port)
// and the lifecycle actions accept beyond a peer on this machine. A loopback listener is reachable
// by every web page open in a browser on the same machine: a page may POST to it (a form, or a
// no-cors fetch, needs no preflight), and by DNS rebinding (its own name pointed at 127.0.0.1) it may
// read the answers too. So a Host that is a DNS name other than `localhost` is refused (a rebinding
// page can only send its own), and a request a page sent (it carries `Origin`, or `Sec-Fetch-Site`
// other than `none`) may not end or drain a proxy. curl, the kubelet's hooks, `kubectl
// port-forward` and the dashboard's own page (same origin, GETs only) send neither.

import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';

/** The request names this machine: no Host, an address, or `localhost` (and its subdomains). */
export function namesThisMachine(req: IncomingMessage): boolean {
  const host = req.headers.host;
  if (host === undefined || host === '') return true;
  if (host.startsWith('[')) return isIP(host.slice(1, host.indexOf(']'))) === 6;
  const name = host.replace(/:\d*$/, '').toLowerCase().replace(/\.$/, '');
  return isIP(name) !== 0 || name === 'localhost' || name.endsWith('.localhost');
}

/** A browser sent it on a web page's behalf (navigations typed by a person say `Sec-Fetch-Site: none`). */
export function sentByWebPage(req: IncomingMessage): boolean {
  if (req.headers.origin !== undefined) return true;
  const site = req.headers['sec-fetch-site'];
  return site !== undefined && site !== 'none';
}
