// forwardTcp on real loopback sockets. TLS passthrough end to end: a plain TCP front peeks the
// ClientHello, looks the SNI up in a compiled `tls` route table and pipes the untouched bytes to a TLS
// upstream, so the client sees the UPSTREAM's certificate; an unknown SNI is closed. Plain TCP: bytes
// both ways, half-close, initial bytes first, a retry after a refused connect, and the closes that
// stand for NC / UH / UF (TCP has no status code to send).

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect as netConnect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { connect as tlsConnect, createServer as createTlsServer, type Server as TlsServer } from 'node:tls';
import { forwardTcp, type TcpForwardRecord } from '../src/core/proxy/tcp-forward.js';
import { peekClientHello } from '../src/core/tls/client-hello.js';
import { issueCertificate } from '../src/core/tls/issue-certificate.js';
import type { L4Route, TlsRouteTable } from '../src/core/routing/types.js';
import { serviceYaml, type TestEndpoint } from './helpers/cluster-yaml.js';
import { cluster, compileValid, toYaml } from './helpers/route-table.js';

// ------------------------------------------------------------------ helpers

async function listen(server: Server): Promise<number> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as AddressInfo).port;
}

/** A loopback port nothing listens on (bound, then released). */
async function deadPort(): Promise<number> {
  const s = createServer();
  const port = await listen(s);
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

const GATEWAY = {
  apiVersion: 'networking.istio.io/v1',
  kind: 'Gateway',
  metadata: { name: 'gw', namespace: 'istio-system' },
  spec: {
    selector: { istio: 'ingressgateway' },
    servers: [
      { port: { number: 443, name: 'tls', protocol: 'TLS' }, hosts: ['*.example.com'], tls: { mode: 'PASSTHROUGH' } },
      { port: { number: 31400, name: 'tcp', protocol: 'TCP' }, hosts: ['*'] },
    ],
  },
};

/** The tcp route of a TCP server whose one VirtualService sends everything to service `up` (port 9000). */
function tcpRouteTo(endpoints: readonly TestEndpoint[], host = 'up'): L4Route {
  const vs = {
    apiVersion: 'networking.istio.io/v1',
    kind: 'VirtualService',
    metadata: { name: 'tcp', namespace: 'default' },
    spec: { hosts: ['*'], gateways: ['istio-system/gw'], tcp: [{ route: [{ destination: { host } }] }] },
  };
  const snapshot = compileValid(serviceYaml('up', endpoints, { port: 9000, portName: 'tcp' }) + '---\n' + toYaml(GATEWAY, vs));
  const route = snapshot.listeners.get(31400)?.servers[0]?.tcpRoute;
  assert.ok(route, 'the TCP server has a route');
  return route;
}

/** A front that hands every connection to forwardTcp with `route`, recording what it reports. */
class Front {
  readonly server: Server;
  readonly records: TcpForwardRecord[] = [];
  #waiters: Array<(r: TcpForwardRecord) => void> = [];
  port = 0;

  constructor(handle: (socket: Socket, done: (r: TcpForwardRecord) => void) => void) {
    this.server = createServer((socket) =>
      handle(socket, (r) => {
        this.records.push(r);
        this.#waiters.shift()?.(r);
      }),
    );
  }

  async start(): Promise<this> {
    this.port = await listen(this.server);
    return this;
  }

  /** The record of the next connection to finish. */
  nextRecord(): Promise<TcpForwardRecord> {
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  close(): void {
    this.server.close();
  }
}

function tcpFront(route: L4Route, initial: Buffer = Buffer.alloc(0), connectTimeoutMs?: number): Promise<Front> {
  return new Front((socket, done) =>
    forwardTcp(socket, initial, route.destinations, route.totalWeight, { random: () => 0.5, onDone: done, ...(connectTimeoutMs ? { connectTimeoutMs } : {}) }),
  ).start();
}

/** Connects, sends `data` then FIN, and collects everything until the proxy's FIN or close. */
function exchange(port: number, data: string): Promise<{ text: string; ended: boolean }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let ended = false;
    const c = netConnect({ port, host: '127.0.0.1', allowHalfOpen: true }, () => c.end(data));
    c.on('data', (d: Buffer) => chunks.push(d));
    c.on('end', () => {
      ended = true;
      c.end();
    });
    c.on('error', () => {});
    c.on('close', () => resolve({ text: Buffer.concat(chunks).toString(), ended }));
  });
}

// ------------------------------------------------------------------ TLS passthrough

describe('TLS passthrough through forwardTcp', () => {
  let upstream: TlsServer;
  let front: Front;
  let rootPem: string;

  before(async () => {
    const root = issueCertificate({ subjectCN: 'passthrough test root', isCA: true, days: 1, keyType: 'ec' });
    const leaf = issueCertificate({ subjectCN: 'upstream a.example.com', dnsNames: ['a.example.com'], issuer: root, days: 1, keyType: 'ec' });
    rootPem = root.certPem;
    upstream = createTlsServer({ key: leaf.keyPem, cert: leaf.certPem }, (s) => {
      s.on('data', (d: Buffer) => s.write(`upstream heard ${d.toString()} for ${(s as unknown as { servername?: string }).servername}`));
      s.on('error', () => {});
    });
    const upstreamPort = await listen(upstream);
    const vs = {
      apiVersion: 'networking.istio.io/v1',
      kind: 'VirtualService',
      metadata: { name: 'a', namespace: 'default' },
      spec: { hosts: ['a.example.com'], gateways: ['istio-system/gw'], tls: [{ match: [{ sniHosts: ['a.example.com'] }], route: [{ destination: { host: 'secure' } }] }] },
    };
    const snapshot = compileValid(serviceYaml('secure', [{ pod: 'secure-1', port: upstreamPort }], { port: 443, portName: 'tls' }) + '---\n' + toYaml(GATEWAY, vs));
    const table: TlsRouteTable = snapshot.listeners.get(443)!.servers[0]!.tlsRoutes!;
    front = await new Front((socket, done) => {
      socket.on('error', () => socket.destroy());
      void peekClientHello(socket).then(({ data, hello }) => {
        const route = hello.state === 'ok' ? table.lookup(hello.sni) : undefined;
        if (!route) return void socket.destroy();
        forwardTcp(socket, data, route.destinations, route.totalWeight, { random: () => 0.5, onDone: done });
      });
    }).start();
  });

  after(() => {
    front.close();
    upstream.close();
  });

  it('the client completes TLS with the upstream itself and talks to it', async () => {
    const record = front.nextRecord();
    const result = await new Promise<{ cn: string; authorized: boolean; reply: string }>((resolve, reject) => {
      const c = tlsConnect({ host: '127.0.0.1', port: front.port, servername: 'a.example.com', ca: rootPem }, () => {
        const cn = c.getPeerCertificate().subject?.CN as string;
        c.write('ping');
        c.once('data', (d: Buffer) => {
          resolve({ cn, authorized: c.authorized, reply: d.toString() });
          c.end();
        });
      });
      c.on('error', reject);
    });
    assert.equal(result.cn, 'upstream a.example.com');
    assert.ok(result.authorized);
    assert.equal(result.reply, 'upstream heard ping for a.example.com');
    const r = await record;
    assert.equal(r.cluster, cluster('secure', { port: 443 }));
    assert.equal(r.flags, '');
    assert.match(r.upstreamHost ?? '', /^127\.0\.0\.1:\d+$/);
    assert.ok(r.bytesReceived > 0 && r.bytesSent > 0);
  });

  it('an SNI with no tls route is closed before any handshake', async () => {
    const outcome = await new Promise<string>((resolve) => {
      const c = tlsConnect({ host: '127.0.0.1', port: front.port, servername: 'unknown.example.com', ca: rootPem }, () => resolve('handshake completed'));
      c.on('error', () => {});
      c.on('close', () => resolve('closed'));
    });
    assert.equal(outcome, 'closed');
  });
});

// ------------------------------------------------------------------ plain TCP

describe('TCP forwarding', () => {
  let echo: Server;
  let echoPort: number;
  const fronts: Front[] = [];
  const front = async (route: L4Route, initial?: Buffer, connectTimeoutMs?: number): Promise<Front> => {
    const f = await tcpFront(route, initial, connectTimeoutMs);
    fronts.push(f);
    return f;
  };

  before(async () => {
    // Reads until the client's FIN, then answers and closes: only works if half-close is carried.
    echo = createServer({ allowHalfOpen: true }, (s) => {
      const chunks: Buffer[] = [];
      s.on('data', (d: Buffer) => chunks.push(d));
      s.on('end', () => s.end(`got ${Buffer.concat(chunks).toString()}`));
      s.on('error', () => {});
    });
    echoPort = await listen(echo);
  });

  after(() => {
    for (const f of fronts) f.close();
    echo.close();
  });

  it('pipes both ways and carries the client’s half-close; the record counts the bytes', async () => {
    const f = await front(tcpRouteTo([{ pod: 'up-1', port: echoPort }]));
    const record = f.nextRecord();
    const r = await exchange(f.port, 'hello world');
    assert.deepEqual(r, { text: 'got hello world', ended: true });
    const rec = await record;
    assert.equal(rec.cluster, cluster('up', { port: 9000 }));
    assert.equal(rec.flags, '');
    assert.equal(rec.upstreamHost, `127.0.0.1:${echoPort}`);
    assert.equal(rec.bytesReceived, 'hello world'.length);
    assert.equal(rec.bytesSent, 'got hello world'.length);
  });

  it('initial bytes go upstream before anything the client sends next', async () => {
    const f = await front(tcpRouteTo([{ pod: 'up-1', port: echoPort }]), Buffer.from('[peeked]'));
    assert.equal((await exchange(f.port, 'rest')).text, 'got [peeked]rest');
  });

  it('a refused connect is tried once more on another endpoint', async () => {
    const dead = await deadPort();
    const f = await front(
      tcpRouteTo([
        { pod: 'dead-1', port: dead },
        { pod: 'up-1', port: echoPort },
      ]),
    );
    for (let i = 0; i < 4; i++) {
      const record = f.nextRecord();
      assert.equal((await exchange(f.port, `n${i}`)).text, `got n${i}`);
      const rec = await record;
      assert.equal(rec.flags, '');
      assert.equal(rec.upstreamHost, `127.0.0.1:${echoPort}`);
    }
  });

  it('when every attempt is refused the client is closed (UF,URX)', async () => {
    const f = await front(
      tcpRouteTo([
        { pod: 'dead-1', port: await deadPort() },
        { pod: 'dead-2', port: await deadPort() },
      ]),
    );
    const record = f.nextRecord();
    const r = await exchange(f.port, 'anyone?');
    assert.equal(r.text, '');
    assert.equal((await record).flags, 'UF,URX');
  });

  it('a service without endpoints closes the client (UH)', async () => {
    const f = await front(tcpRouteTo([]));
    const record = f.nextRecord();
    assert.equal((await exchange(f.port, 'x')).text, '');
    assert.equal((await record).flags, 'UH');
  });

  it('a destination with no cluster closes the client (NC)', async () => {
    const f = await front(tcpRouteTo([{ pod: 'up-1', port: echoPort }], 'missing.example.org'));
    const record = f.nextRecord();
    assert.equal((await exchange(f.port, 'x')).text, '');
    const rec = await record;
    assert.equal(rec.flags, 'NC');
    assert.equal(rec.cluster, 'outbound|31400||missing.example.org');
  });

  it('an upstream that resets takes the client down; a client that goes away takes the upstream down', async () => {
    const rude = createServer((s) => {
      s.on('error', () => {});
      s.once('data', (d: Buffer) => {
        if (d.toString() === 'reset me') s.resetAndDestroy();
      });
    });
    const rudePort = await listen(rude);
    try {
      const f = await front(tcpRouteTo([{ pod: 'rude-1', port: rudePort }]));
      const closed = await new Promise<boolean>((resolve) => {
        const c = netConnect(f.port, '127.0.0.1', () => c.write('reset me'));
        c.on('error', () => {});
        c.on('close', () => resolve(true));
      });
      assert.ok(closed);

      const upstreamGone = new Promise<void>((resolve) => {
        rude.once('connection', (s) => s.once('close', () => resolve()));
      });
      const c = netConnect(f.port, '127.0.0.1', () => c.write('hello'));
      c.on('error', () => {});
      setTimeout(() => c.destroy(), 50);
      await upstreamGone;
    } finally {
      rude.close();
    }
  });
});
