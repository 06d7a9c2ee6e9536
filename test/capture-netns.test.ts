// Transparent capture end to end, in network namespaces with real iptables: two "pods", each a
// namespace where `meshgate iptables` installed the capture rules, an app (uid 1000) and a sidecar
// running `--capture` as uid 1337, plus a control plane and an outsider in namespaces of their own,
// all on one bridge. The client app calls http://product-service:8080/ with no proxy setting; the
// server app sees the caller's SPIFFE identity (mutual TLS between the sidecars); an outsider's
// plaintext call to the app port is redirected to the sidecar and refused (STRICT); raw TCP from
// the client reaches its original destination (conntrack); the rewritten probe port answers.
// Needs root (network namespaces, iptables): skipped with the reason otherwise.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { serviceYaml } from './helpers/cluster-yaml.js';

const BIN = fileURLToPath(new URL('../../bin/meshgate.js', import.meta.url));
const NODE = process.execPath;

function skipReason(): string | undefined {
  if (process.platform !== 'linux') return 'network namespaces need Linux';
  if (process.getuid?.() !== 0) return 'needs root for network namespaces and iptables';
  for (const tool of ['ip', 'iptables-restore', 'setpriv']) {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    } catch {
      return `${tool} is not installed`;
    }
  }
  return undefined;
}

const tag = `mg${process.pid % 100000}`;
const NS = { br: `${tag}br`, cp: `${tag}cp`, a: `${tag}a`, b: `${tag}b`, out: `${tag}out` };
const IP = { cp: '10.77.0.2', a: '10.77.0.3', b: '10.77.0.4', out: '10.77.0.5' };
const SERVICE_IP = '10.77.1.10';
const ECHO_SERVICE_IP = '10.77.1.11';

const sh = (args: string[]): string => execFileSync(args[0]!, args.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

/** Runs `argv` in namespace `ns`, as `uid` when given, to completion: its stdout, or the failure. */
function inNs(ns: string, argv: string[], uid?: number, env: Record<string, string> = {}): Promise<{ ok: boolean; out: string; err: string }> {
  const asUser = uid === undefined ? [] : ['setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups'];
  return new Promise((resolve) => {
    execFile('ip', ['netns', 'exec', ns, ...asUser, ...argv], { env: { ...process.env, ...env }, timeout: 60_000 }, (error, out, err) => resolve({ ok: !error, out, err }));
  });
}

/** Starts a long-running process in `ns`; its stderr is kept for failure messages. */
function daemon(ns: string, argv: string[], uid?: number, env: Record<string, string> = {}): ChildProcess & { log: () => string } {
  const asUser = uid === undefined ? [] : ['setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups'];
  const child = spawn('ip', ['netns', 'exec', ns, ...asUser, ...argv], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] }) as ChildProcess & { log: () => string };
  let log = '';
  child.stderr!.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-6000)));
  child.log = () => log;
  return child;
}

/** Polls an HTTP readiness URL from inside `ns` until it answers 200 (a readiness signal, not a sleep). */
async function waitReady(ns: string, url: string, what: ChildProcess & { log: () => string }): Promise<void> {
  const probe = `fetch(${JSON.stringify(url)}).then(r=>process.exit(r.status===200?0:1),()=>process.exit(1))`;
  for (let i = 0; i < 240; i++) {
    if (what.exitCode !== null) throw new Error(`exited before ready: ${what.log()}`);
    if ((await inNs(ns, [NODE, '-e', probe])).ok) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${url} never ready: ${what.log()}`);
}

const SERVER_APP = `
const http = require('node:http');
http.createServer((req, res) => {
  if (req.url === '/ready') { res.writeHead(200); res.end('ready'); return; }
  const body = JSON.stringify({ app: 'product', path: req.url, host: req.headers.host, xfcc: req.headers['x-forwarded-client-cert'] ?? null, remote: req.socket.remoteAddress });
  res.writeHead(200, { 'content-type': 'application/json' }); res.end(body);
}).listen(8080, ${JSON.stringify(IP.b)});
`;

/** The client app: no proxy setting; only name resolution is stood in for (cluster DNS would answer the Service IP). */
const CLIENT_CALL = `
const http = require('node:http');
const lookup = (host, opts, cb) => opts.all ? cb(null, [{ address: ${JSON.stringify(SERVICE_IP)}, family: 4 }]) : cb(null, ${JSON.stringify(SERVICE_IP)}, 4);
http.get('http://product-service:8080/hello', { lookup }, (res) => {
  let b = ''; res.on('data', (c) => b += c); res.on('end', () => { console.log(JSON.stringify({ status: res.statusCode, body: b })); });
}).on('error', (e) => { console.log(JSON.stringify({ error: e.code || e.message })); });
`;

const reason = skipReason();

describe('transparent capture in network namespaces', { skip: reason ?? false }, () => {
  let dir: string;
  const procs: Array<ChildProcess & { log: () => string }> = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'meshgate-capture-'));
    chmodSync(dir, 0o755);
    // The network: one bridge in a namespace of its own, a veth into each other namespace.
    sh(['ip', 'netns', 'add', NS.br]);
    sh(['ip', '-n', NS.br, 'link', 'add', 'br0', 'type', 'bridge']);
    sh(['ip', '-n', NS.br, 'link', 'set', 'br0', 'up']);
    for (const k of ['cp', 'a', 'b', 'out'] as const) {
      sh(['ip', 'netns', 'add', NS[k]]);
      sh(['ip', '-n', NS.br, 'link', 'add', `v${k}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', NS[k]]);
      sh(['ip', '-n', NS.br, 'link', 'set', `v${k}`, 'master', 'br0', 'up']);
      sh(['ip', '-n', NS[k], 'addr', 'add', `${IP[k]}/24`, 'dev', 'eth0']);
      sh(['ip', '-n', NS[k], 'link', 'set', 'eth0', 'up']);
      sh(['ip', '-n', NS[k], 'link', 'set', 'lo', 'up']);
      // Service IPs are virtual, as in a cluster: a route makes them dialable, capture does the rest.
      sh(['ip', '-n', NS[k], 'route', 'add', '10.77.1.0/24', 'dev', 'eth0']);
    }

    // The mesh's configuration: product-service's endpoint is pod b's address and the app's own port.
    const config = join(dir, 'config');
    mkdirSync(config);
    writeFileSync(join(config, 'product.yaml'), serviceYaml('product-service', [{ pod: 'product-b', port: 8080, address: IP.b, serviceAccount: 'product-service', labels: { 'security.istio.io/tlsMode': 'istio' } }], { port: 8080 }));
    // A TCP service on pod b, declared `tcp`, reached by its cluster IP: captured, then mutual TLS.
    writeFileSync(join(config, 'echo.yaml'), serviceYaml('echo-service', [{ pod: 'echo-b', port: 9000, address: IP.b, serviceAccount: 'product-service', labels: { 'security.istio.io/tlsMode': 'istio' } }], { port: 9000, portName: 'tcp', clusterIP: ECHO_SERVICE_IP }));
    writeFileSync(join(config, 'mtls.yaml'), 'apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: default, namespace: istio-system}\nspec: {mtls: {mode: STRICT}}\n');
    writeFileSync(join(dir, 'tokens.yaml'), '- {token: tok-client-0123456789, namespace: default, serviceAccount: client-app}\n- {token: tok-product-0123456789, namespace: default, serviceAccount: product-service}\n');
    writeFileSync(join(dir, 'client.token'), 'tok-client-0123456789\n', { mode: 0o644 });
    writeFileSync(join(dir, 'product.token'), 'tok-product-0123456789\n', { mode: 0o644 });

    const cp = daemon(NS.cp, [NODE, BIN, 'control', '--config', config, '--tokens', join(dir, 'tokens.yaml'), '--ca-dir', join(dir, 'ca'), '--hostname', IP.cp, '--status-port', '15021']);
    procs.push(cp);
    await waitReady(NS.cp, 'http://127.0.0.1:15021/healthz/ready', cp);
    chmodSync(join(dir, 'ca', 'root-cert.pem'), 0o644);
    chmodSync(join(dir, 'ca'), 0o755);

    // Each pod: the init container's command as root, then the sidecar as 1337 and the app as 1000.
    for (const k of ['a', 'b'] as const) {
      const init = await inNs(NS[k], [NODE, BIN, 'iptables']);
      assert.ok(init.ok, `meshgate iptables in ${k}: ${init.err}`);
    }
    const sidecar = (k: 'a' | 'b', sa: string, token: string, extra: string[], env: Record<string, string> = {}) =>
      daemon(NS[k], [NODE, BIN, 'sidecar', '--control', `https://${IP.cp}:15012`, '--token', join(dir, token), '--root-cert', join(dir, 'ca', 'root-cert.pem'), '--namespace', 'default', '--service-account', sa, '--workload', `${sa}-0`, '--labels', `app=${sa}`, '--capture', '--app-host', IP[k], '--access-log', 'off', ...extra], 1337, env);
    const probers = JSON.stringify({ '/app-health/app/readyz': { httpGet: { path: '/ready', port: 8080, scheme: 'HTTP' }, timeoutSeconds: 2 } });
    const sb = sidecar('b', 'product-service', 'product.token', ['--app-port', '8080'], { ISTIO_KUBE_APP_PROBERS: probers });
    const sa = sidecar('a', 'client-app', 'client.token', []);
    procs.push(sb, sa);
    procs.push(daemon(NS.b, [NODE, '-e', SERVER_APP], 1000));
    // tcp-echo on pod b: answers each chunk with `hello <chunk>`.
    procs.push(daemon(NS.b, [NODE, '-e', `require('node:net').createServer((s) => s.on('data', (d) => s.write('hello ' + d))).listen(9000, ${JSON.stringify(IP.b)})`], 1000));
    // Raw TCP target outside the mesh: answers each line with its echo.
    procs.push(daemon(NS.out, [NODE, '-e', `require('node:net').createServer((s) => s.on('data', (d) => s.write('echo:' + d))).listen(9000, ${JSON.stringify(IP.out)})`]));
    // A server-first protocol (SMTP, MySQL): it greets, the client sends nothing until then.
    procs.push(daemon(NS.out, [NODE, '-e', `require('node:net').createServer((s) => s.end('220 hello\\n')).listen(9001, ${JSON.stringify(IP.out)})`]));
    await waitReady(NS.b, 'http://127.0.0.1:15021/healthz/ready', sb);
    await waitReady(NS.a, 'http://127.0.0.1:15021/healthz/ready', sa);
  });

  after(() => {
    for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
    for (const ns of Object.values(NS)) {
      try {
        sh(['ip', 'netns', 'del', ns]);
      } catch {
        // already gone
      }
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('installs the rules iptables-restore was given', async () => {
    const rules = await inNs(NS.a, ['iptables-save', '-t', 'nat']);
    assert.ok(rules.ok, rules.err);
    for (const line of ['-A PREROUTING -p tcp -j ISTIO_INBOUND', '-A OUTPUT -j ISTIO_OUTPUT', '-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006', '-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001']) {
      assert.ok(rules.out.includes(line), `${line} in\n${rules.out}`);
    }
  });

  it('an app with no proxy setting calls product-service:8080 through captured traffic over mutual TLS', async () => {
    let result: { status?: number; body?: string; error?: string } = {};
    // The app may start before its sidecar has the configuration for product-service; retry like an app would.
    for (let i = 0; i < 40; i++) {
      const run = await inNs(NS.a, [NODE, '-e', CLIENT_CALL], 1000);
      result = JSON.parse(run.out.trim().split('\n').pop() || '{}');
      if (result.status === 200) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    assert.equal(result.status, 200, `${JSON.stringify(result)}\n${procs.map((p) => p.log()).join('\n---\n')}`);
    const body = JSON.parse(result.body!);
    assert.equal(body.app, 'product');
    assert.equal(body.path, '/hello');
    // The server side sees the caller's verified identity: the hop between the pods was mutual TLS.
    assert.match(body.xfcc ?? '', /URI=spiffe:\/\/cluster\.local\/ns\/default\/sa\/client-app/);
    // And the app was reached by its own sidecar from 127.0.0.6 (its Service's targetPort is its own port).
    assert.equal(body.remote, '127.0.0.6');
  });

  it('refuses a plaintext caller without a mesh certificate at the app port (STRICT)', async () => {
    const call = `require('node:http').get('http://${IP.b}:8080/', (res) => console.log('status ' + res.statusCode)).on('error', (e) => console.log('error ' + (e.code || e.message)))`;
    const run = await inNs(NS.out, [NODE, '-e', call]);
    assert.match(run.out, /^error (ECONNRESET|socket hang up)/, run.out);
    // The network itself is fine: the sidecar's own ports are not captured and answer.
    const probe = `fetch('http://${IP.b}:15021/healthz/ready').then(r=>console.log('status ' + r.status),(e)=>console.log('error '+e.message))`;
    assert.match((await inNs(NS.out, [NODE, '-e', probe])).out, /^status 200/);
  });

  it("serves the app's rewritten readiness probe on 15020 by calling the real one", async () => {
    const probe = `fetch('http://${IP.b}:15020/app-health/app/readyz').then(r=>console.log('status ' + r.status),(e)=>console.log('error '+e.message))`;
    assert.match((await inNs(NS.out, [NODE, '-e', probe])).out, /^status 200/);
    const unknown = `fetch('http://${IP.b}:15020/app-health/other/livez').then(r=>console.log('status ' + r.status))`;
    assert.match((await inNs(NS.out, [NODE, '-e', unknown])).out, /^status 404/);
  });

  it("TCP to a mesh service's cluster IP goes over mutual TLS, which the STRICT server sidecar takes", async () => {
    const call = `const s = require('node:net').connect(9000, '${ECHO_SERVICE_IP}', () => s.write('world')); s.on('data', (d) => { console.log(String(d).trim()); s.end(); }); s.on('error', (e) => console.log('error ' + e.code)); s.on('close', () => process.exit(0));`;
    let out = '';
    // The sidecar may not have the service yet; retry like an app would.
    for (let i = 0; i < 40 && out !== 'hello world'; i++) {
      out = (await inNs(NS.a, [NODE, '-e', call], 1000)).out.trim();
      if (out !== 'hello world') await new Promise((r) => setTimeout(r, 250));
    }
    assert.equal(out, 'hello world', procs.map((p) => p.log()).join('\n---\n'));
    // Plaintext from outside the mesh to the same app port is refused (STRICT).
    const direct = `const s = require('node:net').connect(9000, '${IP.b}', () => s.write('world')); s.on('data', (d) => console.log('data ' + d)); s.on('error', (e) => console.log('error ' + e.code)); s.on('close', () => console.log('closed'));`;
    assert.doesNotMatch((await inNs(NS.out, [NODE, '-e', direct])).out, /hello/);
  });

  it('forwards raw TCP to its original destination, found in conntrack', async () => {
    const call = `const s = require('node:net').connect(9000, '${IP.out}', () => s.write('ping\\n')); s.on('data', (d) => { console.log(String(d).trim()); s.end(); }); s.on('error', (e) => console.log('error ' + e.code));`;
    const run = await inNs(NS.a, [NODE, '-e', call], 1000);
    assert.equal(run.out.trim(), 'echo:ping');
    const greeted = `const s = require('node:net').connect(9001, '${IP.out}'); let b = ''; s.on('data', (d) => b += d); s.on('end', () => console.log(b.trim())); s.on('error', (e) => console.log('error ' + e.code));`;
    assert.equal((await inNs(NS.a, [NODE, '-e', greeted], 1000)).out.trim(), '220 hello', 'a client that waits for the server is forwarded after the sniffing window');
  });
});
