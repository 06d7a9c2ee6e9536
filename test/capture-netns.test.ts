// Transparent capture end to end, in network namespaces with real iptables: two "pods", each a
// namespace where `meshgate iptables` installed the capture rules, an app (uid 1000) and a sidecar
// running `--capture` as uid 1337, plus a control plane and an outsider in namespaces of their own,
// all on one bridge. The client app calls http://product-service:8080/ with no proxy setting; the
// server app sees the caller's SPIFFE identity (mutual TLS between the sidecars); an outsider's
// plaintext call to the app port is redirected to the sidecar and refused (STRICT); raw TCP from
// the client reaches its original destination (conntrack); the rewritten probe port answers; IPv6,
// which is not captured, cannot reach the app past its sidecar.
// Needs root (network namespaces, iptables): skipped with the reason otherwise.

import { execFileSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { serviceYaml } from './helpers/cluster-yaml.js';
import { APP_UID, NetnsLab, netnsSkipReason, NODE } from './helpers/netns.js';

const IP = { cp: '10.77.0.2', a: '10.77.0.3', b: '10.77.0.4', out: '10.77.0.5' };
const SERVICE_IP = '10.77.1.10';
const ECHO_SERVICE_IP = '10.77.1.11';

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

const reason = netnsSkipReason();

describe('transparent capture in network namespaces', { skip: reason ?? false }, () => {
  let lab: NetnsLab<keyof typeof IP>;

  before(async () => {
    lab = new NetnsLab(IP);
    lab.up();
    // The mesh's configuration: product-service's endpoint is pod b's address and the app's own port.
    await lab.control('cp', {
      'product.yaml': serviceYaml('product-service', [{ pod: 'product-b', port: 8080, address: IP.b, serviceAccount: 'product-service', labels: { 'security.istio.io/tlsMode': 'istio' } }], { port: 8080 }),
      // A TCP service on pod b, declared `tcp`, reached by its cluster IP: captured, then mutual TLS.
      'echo.yaml': serviceYaml('echo-service', [{ pod: 'echo-b', port: 9000, address: IP.b, serviceAccount: 'product-service', labels: { 'security.istio.io/tlsMode': 'istio' } }], { port: 9000, portName: 'tcp', clusterIP: ECHO_SERVICE_IP }),
      'mtls.yaml': 'apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: default, namespace: istio-system}\nspec: {mtls: {mode: STRICT}}\n',
    }, ['client-app', 'product-service']);

    // Each pod: the init container's command as root, then the sidecar as 1337 and the app as 1000.
    for (const k of ['a', 'b'] as const) {
      const init = await lab.iptables(k);
      assert.ok(init.ok, `meshgate iptables in ${k}: ${init.err}`);
    }
    const probers = JSON.stringify({ '/app-health/app/readyz': { httpGet: { path: '/ready', port: 8080, scheme: 'HTTP' }, timeoutSeconds: 2 } });
    const sb = lab.sidecar('b', 'product-service', ['--app-port', '8080'], { ISTIO_KUBE_APP_PROBERS: probers });
    const sa = lab.sidecar('a', 'client-app');
    lab.daemon('b', [NODE, '-e', SERVER_APP], APP_UID);
    // tcp-echo on pod b: answers each chunk with `hello <chunk>`.
    lab.daemon('b', [NODE, '-e', `require('node:net').createServer((s) => s.on('data', (d) => s.write('hello ' + d))).listen(9000, ${JSON.stringify(IP.b)})`], APP_UID);
    // Raw TCP target outside the mesh: answers each line with its echo.
    lab.daemon('out', [NODE, '-e', `require('node:net').createServer((s) => s.on('data', (d) => s.write('echo:' + d))).listen(9000, ${JSON.stringify(IP.out)})`]);
    // A server-first protocol (SMTP, MySQL): it greets, the client sends nothing until then.
    lab.daemon('out', [NODE, '-e', `require('node:net').createServer((s) => s.end('220 hello\\n')).listen(9001, ${JSON.stringify(IP.out)})`]);
    await lab.waitReady('b', 'http://127.0.0.1:15021/healthz/ready', sb);
    await lab.waitReady('a', 'http://127.0.0.1:15021/healthz/ready', sa);
  });

  after(() => lab?.down());

  it('installs the rules iptables-restore was given', async () => {
    const rules = await lab.run('a', ['iptables-save', '-t', 'nat']);
    assert.ok(rules.ok, rules.err);
    for (const line of ['-A PREROUTING -p tcp -j ISTIO_INBOUND', '-A OUTPUT -j ISTIO_OUTPUT', '-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006', '-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001']) {
      assert.ok(rules.out.includes(line), `${line} in\n${rules.out}`);
    }
  });

  it('an app with no proxy setting calls product-service:8080 through captured traffic over mutual TLS', async () => {
    let result: { status?: number; body?: string; error?: string } = {};
    // The app may start before its sidecar has the configuration for product-service; retry like an app would.
    for (let i = 0; i < 40; i++) {
      const run = await lab.run('a', [NODE, '-e', CLIENT_CALL], APP_UID);
      result = JSON.parse(run.out.trim().split('\n').pop() || '{}');
      if (result.status === 200) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    assert.equal(result.status, 200, `${JSON.stringify(result)}\n${lab.logs()}`);
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
    const run = await lab.run('out', [NODE, '-e', call]);
    assert.match(run.out, /^error (ECONNRESET|socket hang up)/, run.out);
    // The network itself is fine: the sidecar's own ports are not captured and answer.
    const probe = `fetch('http://${IP.b}:15021/healthz/ready').then(r=>console.log('status ' + r.status),(e)=>console.log('error '+e.message))`;
    assert.match((await lab.run('out', [NODE, '-e', probe])).out, /^status 200/);
  });

  it("serves the app's rewritten readiness probe on 15020 by calling the real one", async () => {
    const probe = `fetch('http://${IP.b}:15020/app-health/app/readyz').then(r=>console.log('status ' + r.status),(e)=>console.log('error '+e.message))`;
    assert.match((await lab.run('out', [NODE, '-e', probe])).out, /^status 200/);
    const unknown = `fetch('http://${IP.b}:15020/app-health/other/livez').then(r=>console.log('status ' + r.status))`;
    assert.match((await lab.run('out', [NODE, '-e', unknown])).out, /^status 404/);
  });

  it("TCP to a mesh service's cluster IP goes over mutual TLS, which the STRICT server sidecar takes", async () => {
    const call = `const s = require('node:net').connect(9000, '${ECHO_SERVICE_IP}', () => s.write('world')); s.on('data', (d) => { console.log(String(d).trim()); s.end(); }); s.on('error', (e) => console.log('error ' + e.code)); s.on('close', () => process.exit(0));`;
    let out = '';
    // The sidecar may not have the service yet; retry like an app would.
    for (let i = 0; i < 40 && out !== 'hello world'; i++) {
      out = (await lab.run('a', [NODE, '-e', call], APP_UID)).out.trim();
      if (out !== 'hello world') await new Promise((r) => setTimeout(r, 250));
    }
    assert.equal(out, 'hello world', lab.logs());
    // Plaintext from outside the mesh to the same app port is refused (STRICT).
    const direct = `const s = require('node:net').connect(9000, '${IP.b}', () => s.write('world')); s.on('data', (d) => console.log('data ' + d)); s.on('error', (e) => console.log('error ' + e.code)); s.on('close', () => console.log('closed'));`;
    assert.doesNotMatch((await lab.run('out', [NODE, '-e', direct])).out, /hello/);
  });

  it('forwards raw TCP to its original destination, found in conntrack', async () => {
    const call = `const s = require('node:net').connect(9000, '${IP.out}', () => s.write('ping\\n')); s.on('data', (d) => { console.log(String(d).trim()); s.end(); }); s.on('error', (e) => console.log('error ' + e.code));`;
    const run = await lab.run('a', [NODE, '-e', call], APP_UID);
    assert.equal(run.out.trim(), 'echo:ping');
    const greeted = `const s = require('node:net').connect(9001, '${IP.out}'); let b = ''; s.on('data', (d) => b += d); s.on('end', () => console.log(b.trim())); s.on('error', (e) => console.log('error ' + e.code));`;
    assert.equal((await lab.run('a', [NODE, '-e', greeted], APP_UID)).out.trim(), '220 hello', 'a client that waits for the server is forwarded after the sniffing window');
  });

  it('refuses IPv6 to the app, which capture does not cover', async () => {
    const v6 = { b: 'fd77::4', out: 'fd77::5' };
    for (const k of ['b', 'out'] as const) execFileSync('ip', ['-n', lab.ns[k], '-6', 'addr', 'add', `${v6[k]}/64`, 'dev', 'eth0', 'nodad']);
    lab.daemon('b', [NODE, '-e', `require('node:net').createServer((s) => s.end('app over v6')).listen(8082, '::')`], APP_UID);
    const read = (host: string): string => `const s = require('node:net').connect(8082, '${host}'); let b = ''; s.on('data', (d) => b += d); s.on('end', () => console.log(b)); s.on('error', (e) => console.log('error ' + e.code));`;
    // The app answers over IPv6 loopback inside its pod (polled until it listens)...
    let local = '';
    for (let i = 0; i < 80 && local !== 'app over v6'; i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, 250));
      local = (await lab.run('b', [NODE, '-e', read('::1')], APP_UID)).out.trim();
    }
    assert.equal(local, 'app over v6', lab.logs());
    // ...and from outside the pod its IPv6 address is refused: no plaintext way around STRICT mTLS.
    const direct = (await lab.run('out', [NODE, '-e', read(v6.b)])).out.trim();
    assert.match(direct, /^error E/, direct);
  });
});
