// Runs a real ACME server for tests: Debian's `pebble` (RFC 8555 test CA) with `pebble-challtestsrv`
// as its DNS server (every name resolves to 127.0.0.1), on free loopback ports, with a throwaway CA
// and listener certificate made by openssl. HTTP-01 validation goes to `httpPort`, where the test's
// own responder listens. Without the binaries the calling test is skipped, except in CI, where
// that is a failure (CI installs pebble).

import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { accessSync, constants } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { get as httpsGet } from 'node:https';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import type { TestContext } from 'node:test';

export interface Pebble {
  /** `https://127.0.0.1:<port>/dir`. */
  readonly directoryUrl: string;
  /** The throwaway CA that signed pebble's listener certificate: the ACME client must trust it. */
  readonly caPem: string;
  readonly managementPort: number;
  /** Pebble's current issuing root (a new one at every pebble start). */
  rootPem(): Promise<string>;
  /** Everything the ACME server wrote since it was (re)started: one line per request it served, among others. */
  output(): string;
  /** Stops the ACME server only (challtestsrv keeps running). */
  stop(): Promise<void>;
  /** Starts it again on the same ports. */
  start(): Promise<void>;
  close(): Promise<void>;
}

const BINARIES = ['pebble', 'pebble-challtestsrv'];
const GUARDED_SIGNALS: readonly NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP'];

function onPath(bin: string): boolean {
  return (process.env.PATH ?? '').split(delimiter).some((dir) => {
    try {
      accessSync(join(dir, bin), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/**
 * Starts pebble for `t`, or skips `t` (locally) when pebble is not installed; in CI
 * (`process.env.CI` set) a missing pebble fails the test instead.
 */
export async function startPebble(t: TestContext, opts: { httpPort: number }): Promise<Pebble | undefined> {
  const missing = BINARIES.filter((b) => !onPath(b));
  if (missing.length > 0) {
    if (process.env.CI) throw new Error(`${missing.join(' and ')} not found on PATH; CI must install pebble (apt-get install pebble)`);
    t.skip('pebble not installed: apt-get install pebble');
    return undefined;
  }
  const dir = await mkdtemp(join(tmpdir(), 'meshgate-pebble-'));
  const children = new Set<ChildProcess>();
  // If the test process ends before close() (a crash, a signal from the runner), take the servers along.
  const killChildren = (): void => {
    for (const c of children) if (c.pid !== undefined && c.exitCode === null) process.kill(c.pid, 'SIGKILL');
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    killChildren();
    unguard();
    process.kill(process.pid, signal); // as if no one had listened
  };
  const unguard = (): void => {
    process.removeListener('exit', killChildren);
    for (const sig of GUARDED_SIGNALS) process.removeListener(sig, onSignal);
  };
  process.once('exit', killChildren);
  for (const sig of GUARDED_SIGNALS) process.once(sig, onSignal);
  try {
    const caPem = await makeCertificates(dir);
    const [listenPort, managementPort, tlsPort, challtestManagement] = await freeTcpPorts(4);
    const dnsPort = await freeTcpAndUdpPort();
    const config = {
      pebble: {
        listenAddress: `127.0.0.1:${listenPort}`,
        managementListenAddress: `127.0.0.1:${managementPort}`,
        certificate: join(dir, 'cert.pem'),
        privateKey: join(dir, 'key.pem'),
        httpPort: opts.httpPort,
        tlsPort,
        ocspResponderURL: '',
        externalAccountBindingRequired: false,
      },
    };
    await writeFile(join(dir, 'pebble.json'), JSON.stringify(config, null, 2));

    const dns = run(children, 'pebble-challtestsrv', [
      '-dns01', `127.0.0.1:${dnsPort}`, '-http01', '', '-https01', '', '-tlsalpn01', '',
      '-management', `127.0.0.1:${challtestManagement}`, '-defaultIPv4', '127.0.0.1', '-defaultIPv6', '',
    ], {});
    await waitFor(() => tcpOpen(challtestManagement!), 'pebble-challtestsrv', dns);

    const directoryUrl = `https://127.0.0.1:${listenPort}/dir`;
    let server: ChildProcess | undefined;
    let serverOutput: Buffer[] = [];
    const startServer = async (): Promise<void> => {
      server = run(children, 'pebble', ['-config', join(dir, 'pebble.json'), '-dnsserver', `127.0.0.1:${dnsPort}`, '-strict=false'], {
        // Without NOSLEEP every validation waits seconds; nonce rejection would only test acme-client's retries.
        PEBBLE_VA_NOSLEEP: '1',
        PEBBLE_WFE_NONCEREJECT: '0',
      });
      const started = server;
      serverOutput = [];
      server.stdout?.on('data', (b: Buffer) => serverOutput.push(b));
      server.stderr?.on('data', (b: Buffer) => serverOutput.push(b));
      await waitFor(() => fetchText(directoryUrl, caPem).then(() => true, () => false), 'pebble', started);
    };
    await startServer();

    return {
      directoryUrl,
      caPem,
      managementPort: managementPort!,
      output: () => Buffer.concat(serverOutput).toString('utf8'),
      rootPem: () => fetchText(`https://127.0.0.1:${managementPort}/roots/0`, caPem),
      stop: async () => {
        if (server) await stopChild(children, server);
        server = undefined;
      },
      start: startServer,
      close: async () => {
        for (const c of [...children]) await stopChild(children, c);
        unguard();
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    for (const c of [...children]) await stopChild(children, c);
    unguard();
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

/** A CA and a `localhost` / 127.0.0.1 certificate it signed, for pebble's HTTPS listener. */
async function makeCertificates(dir: string): Promise<string> {
  const openssl = (...args: string[]): void => {
    execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  };
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  openssl('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=throwaway test ACME listener CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  openssl('req', ...ec, '-keyout', 'key.pem', '-out', 'cert.csr', '-subj', '/CN=localhost');
  await writeFile(join(dir, 'ext.cnf'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  openssl('x509', '-req', '-in', 'cert.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-set_serial', '2', '-days', '2', '-extfile', 'ext.cnf', '-out', 'cert.pem');
  return readFile(join(dir, 'ca.pem'), 'utf8');
}

function run(children: Set<ChildProcess>, bin: string, args: string[], env: Record<string, string>): ChildProcess {
  const child = spawn(bin, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  // Kept for the error message when it does not come up.
  const output: Buffer[] = [];
  const keep = (b: Buffer): void => {
    output.push(b);
    if (output.length > 200) output.shift();
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  (child as ChildProcess & { output: () => string }).output = () => Buffer.concat(output).toString('utf8');
  child.once('exit', () => children.delete(child));
  return child;
}

async function stopChild(children: Set<ChildProcess>, child: ChildProcess): Promise<void> {
  children.delete(child);
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  process.kill(child.pid, 'SIGTERM');
  const timer = setTimeout(() => {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
  }, 3000);
  await exited;
  clearTimeout(timer);
}

async function waitFor(ready: () => Promise<boolean>, what: string, child: ChildProcess, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${what} exited with ${child.exitCode}: ${outputOf(child)}`);
    if (await ready()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`${what} did not become ready within ${timeoutMs} ms: ${outputOf(child)}`);
}

function outputOf(child: ChildProcess): string {
  const f = (child as ChildProcess & { output?: () => string }).output;
  return (f ? f() : '').slice(-2000);
}

function fetchText(url: string, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = httpsGet(url, { ca, timeout: 2000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => (res.statusCode === 200 ? resolve(Buffer.concat(chunks).toString('utf8')) : reject(new Error(`${url}: HTTP ${res.statusCode}`))));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${url}: timeout`)));
    req.on('error', reject);
  });
}

function tcpOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** Ports the kernel hands out now, held together so they differ, then released. */
async function freeTcpPorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: n }, () => new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
      const s = createServer();
      s.once('error', reject);
      s.listen(0, '127.0.0.1', () => resolve(s));
    })),
  );
  const ports = servers.map((s) => (s.address() as { port: number }).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

/** The DNS server listens on UDP and TCP alike, so its port must be free for both. */
async function freeTcpAndUdpPort(): Promise<number> {
  for (let i = 0; i < 20; i++) {
    const udp = createSocket('udp4');
    const port = await new Promise<number>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind(0, '127.0.0.1', () => resolve(udp.address().port));
    });
    const tcpFree = await new Promise<boolean>((resolve) => {
      const s = createServer();
      s.once('error', () => resolve(false));
      s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    await new Promise<void>((r) => udp.close(() => r()));
    if (tcpFree) return port;
  }
  throw new Error('no port free for both UDP and TCP');
}
