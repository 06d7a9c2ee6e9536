// Istio's "Using an External HTTPS Proxy" task under transparent capture, in network namespaces: a
// squid stand-in (CONNECT on 3128, outside the mesh, its own name lookups) in front of Wikipedia
// (test/helpers/wikipedia.ts), the mesh REGISTRY_ONLY, and the task's ServiceEntry
// (test/fixtures/istio-tasks/http-proxy/) with $PROXY_IP and $PROXY_PORT filled in as the shell does:
// - curl in the `external` namespace (no sidecar) reaches Wikipedia through the proxy, which logs
//   `TCP_TUNNEL/200 ... CONNECT en.wikipedia.org:443`;
// - from sleep, with its sidecar: without the entry the proxy is out of reach (BlackHoleCluster);
//   with it, `HTTPS_PROXY=$PROXY_IP:$PROXY_PORT curl https://en.wikipedia.org/wiki/Main_Page` shows
//   the title, the sidecar logs the connection to `outbound|3128||my-company-proxy.com` at
//   $PROXY_IP:3128, and the proxy logs sleep's CONNECT;
// - the proxy is the only way out: Wikipedia dialled directly stays closed.
// Needs root (network namespaces, iptables): skipped with the reason otherwise.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { meshConfigYaml } from './helpers/cluster-yaml.js';
import { eventually } from './helpers/gateway.js';
import { APP_UID, NetnsLab, netnsSkipReason, NODE, type Daemon } from './helpers/netns.js';
import { repoPath } from './helpers/route-table.js';
import { fetchTitle, TITLES, wikipediaCertificates, wikipediaServer } from './helpers/wikipedia.js';

const IP = { cp: '10.77.0.2', sleep: '10.77.0.3', wikipedia: '10.77.0.5', squid: '10.77.0.7', external: '10.77.0.8' };
const PROXY_PORT = 3128;
const PAGE = 'en.wikipedia.org/wiki/Main_Page';
const TITLE = TITLES[PAGE]!;

/**
 * squid as the task configures it, for what the task does: CONNECT to port 443 only, the name looked
 * up by the proxy (Wikipedia's, in its own table), one access log line per tunnel on stderr.
 */
const squid = (wikipedia: string): string =>
  `const names = { 'en.wikipedia.org': '${wikipedia}', 'de.wikipedia.org': '${wikipedia}' };
require('node:net').createServer((c) => {
  const client = c.remoteAddress;
  c.on('error', () => c.destroy());
  c.once('data', (d) => {
    const [, host, port] = /^CONNECT ([^:]+):(\\d+) /.exec(d.toString()) ?? [];
    const ip = names[host];
    if (port !== '443' || !ip) return c.end('HTTP/1.1 403 Forbidden\\r\\n\\r\\n');
    const started = Date.now();
    let bytes = 0;
    const u = require('node:net').connect(443, ip, () => { c.write('HTTP/1.1 200 Connection established\\r\\n\\r\\n'); c.pipe(u); u.pipe(c); });
    u.on('data', (b) => (bytes += b.length));
    u.on('error', () => c.destroy());
    // The line is written once Wikipedia's side of the tunnel has closed.
    u.on('close', () => { c.destroy(); process.stderr.write((Date.now() / 1000).toFixed(3) + ' ' + (Date.now() - started) + ' ' + client + ' TCP_TUNNEL/200 ' + bytes + ' CONNECT ' + host + ':' + port + ' - HIER_DIRECT/' + ip + ' -\\n'); });
  });
}).listen(${PROXY_PORT}, '${IP.squid}');`;

const reason = netnsSkipReason();

describe('Using an External HTTPS Proxy (squid, capture, REGISTRY_ONLY)', { skip: reason ?? false }, () => {
  let lab: NetnsLab<keyof typeof IP>;
  let proxy: Daemon, sleepSidecar: Daemon;
  const wikipedia = wikipediaCertificates();
  const PROXY = { address: IP.squid, port: PROXY_PORT };

  /** `curl` from `host` as its app (uid 1000: captured where a sidecar runs), through the proxy or not. */
  const curl = async (host: 'sleep' | 'external', proxy?: typeof PROXY): Promise<string> =>
    (await lab.run(host, [NODE, '-e', fetchTitle(PAGE, IP.wikipedia, proxy)], APP_UID, { CA: wikipedia.caPem })).out.trim().split('\n')[0] ?? '';
  /** squid's access log lines for tunnels from `client`. */
  const tunnels = (client: string): string[] => proxy.log().split('\n').filter((l) => l.includes(` ${client} TCP_TUNNEL/200 `));

  before(async () => {
    lab = new NetnsLab(IP);
    lab.up();
    await lab.control('cp', { 'mesh.yaml': meshConfigYaml('outboundTrafficPolicy:\n  mode: REGISTRY_ONLY') }, ['sleep']);
    const init = await lab.iptables('sleep');
    assert.ok(init.ok, `meshgate iptables: ${init.err}`);
    sleepSidecar = lab.sidecar('sleep', 'sleep', ['--access-log', '/dev/stderr']);
    lab.daemon('wikipedia', [NODE, '-e', wikipediaServer(IP.wikipedia)], undefined, wikipedia.serverEnv);
    proxy = lab.daemon('squid', [NODE, '-e', squid(IP.wikipedia)]);
    await lab.waitReady('sleep', 'http://127.0.0.1:15021/healthz/ready', sleepSidecar);
  });
  after(() => lab?.down());

  it('from the external namespace (no sidecar), HTTPS_PROXY curl reaches Wikipedia; squid logs the tunnel', async () => {
    let out = await curl('external', PROXY);
    // The proxy's own start has no readiness line: the first call waits for it to listen.
    for (let i = 0; i < 40 && out !== TITLE; i++) {
      await new Promise((r) => setTimeout(r, 250));
      out = await curl('external', PROXY);
    }
    assert.equal(out, TITLE, lab.logs());
    // squid writes its line when the tunnel closes, just after the client sees its end.
    await eventually(async () => tunnels(IP.external).length > 0);
    assert.match(tunnels(IP.external).at(-1)!, / TCP_TUNNEL\/200 \d+ CONNECT en\.wikipedia\.org:443 - HIER_DIRECT\/10\.77\.0\.5 -$/);
  });

  it('REGISTRY_ONLY, no ServiceEntry: from sleep the proxy is out of reach', async () => {
    assert.match(await curl('sleep', PROXY), /^failed: /);
    assert.deepEqual(tunnels(IP.sleep), []);
  });

  it('the ServiceEntry for $PROXY_IP:$PROXY_PORT: sleep reaches Wikipedia through the proxy', async () => {
    const entry = (await readFile(repoPath('test/fixtures/istio-tasks/http-proxy/service-entry.yaml'), 'utf8')).replace('$PROXY_IP', IP.squid).replace('$PROXY_PORT', String(PROXY_PORT));
    await writeFile(join(lab.dir, 'config', 'proxy.yaml'), entry);
    let out = await curl('sleep', PROXY);
    for (let i = 0; i < 60 && out !== TITLE; i++) {
      await new Promise((r) => setTimeout(r, 250));
      out = await curl('sleep', PROXY);
    }
    assert.equal(out, TITLE, lab.logs());
    // The sidecar's log: the connection to the entry's cluster, at the proxy's address.
    await eventually(async () => sleepSidecar.log().includes('my-company-proxy.com'));
    assert.ok(sleepSidecar.log().split('\n').some((l) => l.includes('outbound|3128||my-company-proxy.com') && l.includes(`${IP.squid}:${PROXY_PORT}`)), sleepSidecar.log());
    await eventually(async () => tunnels(IP.sleep).length > 0);
    assert.match(tunnels(IP.sleep).at(-1)!, /CONNECT en\.wikipedia\.org:443 - HIER_DIRECT\/10\.77\.0\.5 -$/);
  });

  it('the proxy is the only way out: https://en.wikipedia.org dialled directly stays closed', async () => {
    assert.match(await curl('sleep'), /^failed: |^no title$/);
  });
});
