// ClientHello parsing and peeking: real hellos captured from Node's TLS client (TLS 1.3 and 1.2, with
// and without SNI/ALPN), the same hellos cut short or re-framed over several records, hand-built
// malformed ones, a few thousand random mutations that must never throw, and peekClientHello on real
// sockets (bytes are handed back, nothing is lost, timeouts and early closes are reported).

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createHttpServer } from 'node:http';
import { createServer, connect as netConnect, type AddressInfo, type Server, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { MAX_CLIENT_HELLO, parseClientHello, peekClientHello, type ClientHelloInfo } from '../src/core/tls/client-hello.js';
import { seededRandom } from './helpers/random.js';
import { captureHello } from './helpers/client-hello.js';

// ------------------------------------------------------------------ capturing real hellos

/** Re-frames the handshake message of `hello` into handshake records of at most `size` bytes. */
function reframe(hello: Buffer, size: number): Buffer {
  const message = hello.subarray(5, 5 + hello.readUInt16BE(3));
  const out: Buffer[] = [];
  for (let i = 0; i < message.length; i += size) {
    const part = message.subarray(i, i + size);
    const head = Buffer.from([0x16, 0x03, 0x01, 0, 0]);
    head.writeUInt16BE(part.length, 3);
    out.push(head, part);
  }
  return Buffer.concat(out);
}

// ------------------------------------------------------------------ hand-built hellos

const u16 = (n: number): Buffer => Buffer.from([n >> 8, n & 0xff]);
const withU16Length = (b: Buffer): Buffer => Buffer.concat([u16(b.length), b]);
const ext = (type: number, data: Buffer): Buffer => Buffer.concat([u16(type), withU16Length(data)]);
const sniExt = (...names: Array<Buffer | string>): Buffer =>
  ext(0, withU16Length(Buffer.concat(names.map((n) => (typeof n === 'string' ? Buffer.concat([Buffer.from([0]), withU16Length(Buffer.from(n))]) : n)))));
const alpnExt = (...names: string[]): Buffer => ext(16, withU16Length(Buffer.concat(names.map((n) => Buffer.concat([Buffer.from([n.length]), Buffer.from(n)])))));

interface BuildOptions {
  readonly extensions?: readonly Buffer[] | null;
  readonly sessionId?: number;
  readonly suites?: Buffer;
  readonly handshakeType?: number;
}

/** A ClientHello in one record: TLS 1.2 legacy version, random, session id, two suites, null compression. */
function build(o: BuildOptions = {}): Buffer {
  const parts: Buffer[] = [Buffer.from([0x03, 0x03]), Buffer.alloc(32, 7), Buffer.from([o.sessionId ?? 32]), Buffer.alloc(Math.min(o.sessionId ?? 32, 255), 1)];
  parts.push(o.suites ?? withU16Length(Buffer.from([0x13, 0x01, 0xc0, 0x2f])), Buffer.from([1, 0]));
  if (o.extensions !== null) parts.push(withU16Length(Buffer.concat(o.extensions ?? [])));
  const body = Buffer.concat(parts);
  const message = Buffer.concat([Buffer.from([o.handshakeType ?? 1, body.length >> 16, (body.length >> 8) & 0xff, body.length & 0xff]), body]);
  return Buffer.concat([Buffer.from([0x16, 0x03, 0x01]), u16(message.length), message]);
}

const STATES = new Set(['need-more', 'not-tls', 'ok', 'invalid']);

// ------------------------------------------------------------------ tests

describe('parseClientHello on real hellos', () => {
  let tls13: Buffer;
  let tls12: Buffer;
  let noSni: Buffer;

  before(async () => {
    tls13 = await captureHello({ servername: 'API.Example.COM', ALPNProtocols: ['h2', 'http/1.1'] });
    tls12 = await captureHello({ servername: 'legacy.example.com', maxVersion: 'TLSv1.2' });
    // Node sends no SNI when connecting to an IP address without a servername.
    noSni = await captureHello({});
  });

  it('reads SNI (lower-cased) and ALPN from a TLS 1.3 hello', () => {
    assert.deepEqual(parseClientHello(tls13), { state: 'ok', sni: 'api.example.com', alpn: ['h2', 'http/1.1'] });
  });

  it('reads a TLS 1.2-only hello without ALPN', () => {
    assert.deepEqual(parseClientHello(tls12), { state: 'ok', sni: 'legacy.example.com' });
  });

  it('a hello without server_name is ok with no sni', () => {
    const h = parseClientHello(noSni);
    assert.equal(h.state, 'ok');
    assert.equal(h.sni, undefined);
  });

  it('every proper prefix needs more; the whole record is ok', () => {
    for (let n = 0; n < tls13.length; n++) assert.equal(parseClientHello(tls13.subarray(0, n)).state, 'need-more', `prefix of ${n} bytes`);
  });

  it('a hello spread over several records is reassembled, and its prefixes need more', () => {
    const framed = reframe(tls13, 97);
    assert.ok(framed.length > tls13.length + 5);
    assert.deepEqual(parseClientHello(framed), parseClientHello(tls13));
    for (let n = 0; n < framed.length; n++) assert.equal(parseClientHello(framed.subarray(0, n)).state, 'need-more', `prefix of ${n} bytes`);
    // Three bytes per record puts even the handshake header across two records.
    assert.equal(parseClientHello(reframe(build({ extensions: [sniExt('x.example.com')] }), 3)).state, 'invalid', 'too many records');
    assert.deepEqual(parseClientHello(reframe(build({ extensions: [sniExt('x.example.com')] }), 40)), { state: 'ok', sni: 'x.example.com' });
  });

  it('bytes after the hello (early data) do not matter', () => {
    const early = Buffer.concat([tls13, Buffer.from([0x17, 0x03, 0x03, 0x00, 0x02, 1, 2]), Buffer.from('junk')]);
    assert.deepEqual(parseClientHello(early), parseClientHello(tls13));
  });

  it('survives thousands of random mutations without throwing', () => {
    const random = seededRandom(42);
    const int = (n: number): number => Math.floor(random() * n);
    const seeds = [tls13, tls12, noSni, reframe(tls13, 200)];
    const counts = new Map<string, number>();
    for (let i = 0; i < 6000; i++) {
      const seed = seeds[i % seeds.length]!;
      let b = Buffer.from(seed);
      const edits = 1 + int(4);
      for (let e = 0; e < edits; e++) {
        const kind = int(5);
        const at = int(b.length);
        if (kind === 0) b[at] = int(256);
        else if (kind === 1) b = b.subarray(0, at);
        else if (kind === 2) b = Buffer.concat([b.subarray(0, at), Buffer.from([int(256), int(256)]), b.subarray(at)]);
        else if (kind === 3) b = Buffer.concat([b.subarray(0, at), b.subarray(Math.min(b.length, at + 1 + int(8)))]);
        else if (b.length > at + 1) b.writeUInt16BE(int(65536), at); // smash what is likely a length
      }
      let h: ClientHelloInfo;
      assert.doesNotThrow(() => {
        h = parseClientHello(b);
      }, `mutation ${i}`);
      assert.ok(STATES.has(h!.state));
      if (h!.sni !== undefined) assert.match(h!.sni, /^[a-z0-9_.-]+$/);
      counts.set(h!.state, (counts.get(h!.state) ?? 0) + 1);
    }
    // Pure noise, with and without a plausible record header.
    for (let i = 0; i < 2000; i++) {
      const b = Buffer.alloc(int(300));
      for (let k = 0; k < b.length; k++) b[k] = int(256);
      if (i % 2 === 0 && b.length > 3) b.set([0x16, 0x03, 0x01], 0);
      assert.ok(STATES.has(parseClientHello(b).state));
    }
    // The mutations reach every outcome, so the fuzzing explores more than one path.
    for (const s of STATES) assert.ok((counts.get(s) ?? 0) > 0, `some mutation gave ${s}`);
  });
});

describe('parseClientHello on hand-built input', () => {
  it('tells plain text and other protocols apart from TLS', () => {
    assert.equal(parseClientHello(Buffer.alloc(0)).state, 'need-more');
    assert.equal(parseClientHello(Buffer.from([0x16])).state, 'need-more');
    assert.equal(parseClientHello(Buffer.from('GET / HTTP/1.1\r\nhost: a\r\n\r\n')).state, 'not-tls');
    assert.equal(parseClientHello(Buffer.from('PRI * HTTP/2.0\r\n')).state, 'not-tls');
    assert.equal(parseClientHello(Buffer.from([0x16, 0x02, 0x00])).state, 'not-tls');
    assert.equal(parseClientHello(Buffer.from([0x80, 0x2e, 0x01, 0x03, 0x01])).state, 'not-tls', 'SSLv2-style hello');
    assert.equal(parseClientHello(Buffer.from([0x17, 0x03, 0x03, 0x00, 0x01, 0x00])).state, 'not-tls');
  });

  it('accepts a minimal hello, with or without extensions', () => {
    assert.deepEqual(parseClientHello(build({ extensions: null })), { state: 'ok' });
    assert.deepEqual(parseClientHello(build({ extensions: [] })), { state: 'ok' });
    assert.deepEqual(parseClientHello(build({ extensions: [ext(0x2b, Buffer.from([2, 3, 4])), sniExt('A.b-c_d.Example')] })), { state: 'ok', sni: 'a.b-c_d.example' });
  });

  it('skips unknown name types and keeps the host_name', () => {
    const other = Buffer.concat([Buffer.from([7]), withU16Length(Buffer.from('whatever'))]);
    assert.deepEqual(parseClientHello(build({ extensions: [sniExt(other, 'real.example.com')] })), { state: 'ok', sni: 'real.example.com' });
  });

  const invalid: Array<[string, Buffer]> = [
    ['a ServerHello', build({ handshakeType: 2 })],
    ['an odd cipher suite length', build({ suites: withU16Length(Buffer.from([0x13, 0x01, 0xc0])) })],
    ['no cipher suites', build({ suites: withU16Length(Buffer.alloc(0)) })],
    ['a session id over 32 bytes', build({ sessionId: 33 })],
    ['a repeated extension', build({ extensions: [alpnExt('h2'), alpnExt('h2')] })],
    ['two host names', build({ extensions: [sniExt('a.example.com', 'b.example.com')] })],
    ['an SNI with a NUL byte', build({ extensions: [sniExt('a.example.com\0.evil')] })],
    ['an SNI with a space', build({ extensions: [sniExt('a example.com')] })],
    ['an SNI with a trailing dot', build({ extensions: [sniExt('a.example.com.')] })],
    ['an SNI over 255 bytes', build({ extensions: [sniExt('a'.repeat(256))] })],
    ['an SNI with non-ASCII bytes', build({ extensions: [sniExt(Buffer.concat([Buffer.from([0]), withU16Length(Buffer.from('bücher.example', 'utf8'))]))] })],
    ['an empty server_name list', build({ extensions: [ext(0, withU16Length(Buffer.alloc(0)))] })],
    ['an empty ALPN list', build({ extensions: [ext(16, withU16Length(Buffer.alloc(0)))] })],
    ['an empty ALPN name', build({ extensions: [ext(16, withU16Length(Buffer.from([0])))] })],
    ['an extension running past its block', build({ extensions: [Buffer.concat([u16(0x2b), u16(10), Buffer.from([1])])] })],
  ];
  for (const [what, buf] of invalid) {
    it(`rejects ${what}`, () => assert.equal(parseClientHello(buf).state, 'invalid'));
  }

  it('rejects oversized or empty records, and a hello longer than the limit before it arrives', () => {
    const huge = Buffer.from([0x16, 0x03, 0x01, 0x00, 0x04, 0x01, (MAX_CLIENT_HELLO + 1) >> 16, ((MAX_CLIENT_HELLO + 1) >> 8) & 0xff, (MAX_CLIENT_HELLO + 1) & 0xff]);
    assert.equal(parseClientHello(huge).state, 'invalid');
    assert.equal(parseClientHello(Buffer.from([0x16, 0x03, 0x01, 0x40, 0x01])).state, 'invalid', 'record over 16 KiB');
    assert.equal(parseClientHello(Buffer.from([0x16, 0x03, 0x01, 0x00, 0x00])).state, 'invalid', 'zero-length record');
  });

  it('rejects a non-handshake record in the middle of a hello', () => {
    const framed = reframe(build({ extensions: [sniExt('a.example.com')] }), 30);
    const second = 5 + 30;
    const broken = Buffer.from(framed);
    broken[second] = 0x17;
    assert.equal(parseClientHello(broken).state, 'invalid');
  });
});

// ------------------------------------------------------------------ peekClientHello

describe('peekClientHello on sockets', () => {
  let server: Server;
  let port: number;
  let next: ((s: Socket) => void) | undefined;
  let hello: Buffer;

  before(async () => {
    hello = await captureHello({ servername: 'peek.example.com' });
    server = createServer((s) => next?.(s));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  after(() => server.close());

  /** Runs `client` against the server and resolves with what peek saw plus the bytes read after unshift. */
  function peekWith(client: (s: Socket) => void, timeoutMs = 2000): Promise<{ peeked: Awaited<ReturnType<typeof peekClientHello>>; paused: boolean; after: Buffer }> {
    return new Promise((resolve) => {
      next = (s) => {
        void peekClientHello(s, timeoutMs).then((peeked) => {
          const paused = s.readableFlowing !== true;
          // After the peer's end a stream refuses unshift; the caller would just close it.
          if (!peeked.stopped) s.unshift(peeked.data);
          const chunks: Buffer[] = [];
          s.on('data', (c: Buffer) => chunks.push(c));
          s.on('error', () => {});
          setTimeout(() => {
            s.destroy();
            resolve({ peeked, paused, after: Buffer.concat(chunks) });
          }, 60);
        });
      };
      const c = netConnect(port, '127.0.0.1', () => client(c));
      c.on('error', () => {});
    });
  }

  it('a real TLS client: ok with its SNI, socket not flowing, and the bytes come back after unshift', async () => {
    next = undefined;
    const got = new Promise<{ info: ClientHelloInfo; data: Buffer; paused: boolean; again: Buffer }>((resolve) => {
      next = (s) => {
        void peekClientHello(s).then(({ data, hello: info }) => {
          const paused = s.readableFlowing !== true;
          s.unshift(data);
          s.once('data', (again: Buffer) => {
            resolve({ info, data, paused, again });
            s.destroy();
          });
        });
      };
    });
    const c = tlsConnect({ host: '127.0.0.1', port, servername: 'Peek.Example.com' });
    c.on('error', () => {});
    const r = await got;
    c.destroy();
    assert.equal(r.info.state, 'ok');
    assert.equal(r.info.sni, 'peek.example.com');
    assert.ok(r.paused, 'the socket does not flow until someone reads');
    assert.deepEqual(r.again.subarray(0, r.data.length), r.data);
  });

  it('a hello written in pieces is gathered; extra bytes written with it are returned too', async () => {
    const extra = Buffer.from('after-the-hello');
    const r = await peekWith((c) => {
      c.write(hello.subarray(0, 10));
      setTimeout(() => c.write(hello.subarray(10, 100)), 20);
      setTimeout(() => c.write(Buffer.concat([hello.subarray(100), extra])), 40);
    });
    assert.equal(r.peeked.hello.state, 'ok');
    assert.equal(r.peeked.hello.sni, 'peek.example.com');
    assert.equal(r.peeked.stopped, undefined);
    assert.ok(r.paused, 'the socket does not flow until someone reads');
    // Nothing was swallowed: what peek returned plus what followed is exactly what the client sent.
    assert.deepEqual(r.after, Buffer.concat([hello, extra]));
  });

  it('plain HTTP is not TLS, and its bytes are handed back', async () => {
    const req = 'GET / HTTP/1.1\r\nhost: x\r\n\r\n';
    const r = await peekWith((c) => c.write(req));
    assert.equal(r.peeked.hello.state, 'not-tls');
    assert.equal(r.after.toString(), req);
  });

  it('a client that stalls mid-hello times out with what it sent', async () => {
    const r = await peekWith((c) => c.write(hello.subarray(0, 20)), 100);
    assert.equal(r.peeked.hello.state, 'need-more');
    assert.equal(r.peeked.stopped, 'timeout');
    assert.deepEqual(r.peeked.data, hello.subarray(0, 20));
  });

  it('a client that closes mid-hello is reported as closed', async () => {
    const r = await peekWith((c) => c.end(hello.subarray(0, 30)));
    assert.equal(r.peeked.hello.state, 'need-more');
    assert.equal(r.peeked.stopped, 'closed');
    assert.deepEqual(r.peeked.data, hello.subarray(0, 30));
  });

  it('after a not-TLS peek, node:http can take the socket over with no resume()', async () => {
    const web = createHttpServer((req, res) => res.end(`seen ${req.url}`));
    next = (s) => {
      void peekClientHello(s).then(({ data }) => {
        s.unshift(data);
        web.emit('connection', s);
      });
    };
    const res = await fetch(`http://127.0.0.1:${port}/after-peek`, { signal: AbortSignal.timeout(3000) });
    assert.equal(await res.text(), 'seen /after-peek');
    web.close();
  });

  it('a garbage hello is invalid', async () => {
    const bad = build({ extensions: [sniExt('a.example.com', 'b.example.com')] });
    const r = await peekWith((c) => c.write(bad));
    assert.equal(r.peeked.hello.state, 'invalid');
  });
});
