// A real gRPC service (`@grpc/grpc-js` server, `@grpc/proto-loader`) for the proxy's HTTP/2 and gRPC
// tests, and clients of it: echo/fail unary calls with binary metadata both ways, a server stream that
// runs until cancelled, a client stream. The server counts what it saw, cancellations included, so a
// test can tell whether a client's cancel reached it.

import * as grpc from '@grpc/grpc-js';
import * as loader from '@grpc/proto-loader';
import { repoPath } from './route-table.js';

const definition = loader.loadSync(repoPath('test/fixtures/grpc/echo.proto'), { keepCase: false, defaults: true });
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const EchoService = (grpc.loadPackageDefinition(definition) as any).meshgate.test.Echo as grpc.ServiceClientConstructor;

export interface EchoReply {
  message: string;
  seen: number;
}

export interface EchoServer {
  readonly port: number;
  /** Calls per method name. */
  readonly calls: Map<string, number>;
  /** Calls whose client went away (a cancel, a reset, a deadline) before they ended. */
  cancelled: number;
  /** Server streams still running. */
  open: number;
  /** Client streams that reached their end (the client half-closed). */
  clientStreamsEnded: number;
  /** Metadata of the last call. */
  lastMetadata?: grpc.Metadata;
  /** `fail_with` answers for the next unary calls, used up one per call (for retry tests). */
  failNext: number[];
  close(): Promise<void>;
}

/** `address`: where it listens (`host:port`; port 0 for any free one). */
export async function startEchoServer(address = '127.0.0.1:0'): Promise<EchoServer> {
  const server = new grpc.Server();
  const s: EchoServer = {
    port: 0,
    calls: new Map(),
    cancelled: 0,
    open: 0,
    clientStreamsEnded: 0,
    failNext: [],
    close: () => new Promise((resolve) => server.tryShutdown(() => resolve())),
  };
  const count = (name: string, call: { metadata: grpc.Metadata; on(e: 'cancelled', f: () => void): unknown }): void => {
    s.calls.set(name, (s.calls.get(name) ?? 0) + 1);
    s.lastMetadata = call.metadata;
    call.on('cancelled', () => s.cancelled++);
  };
  const echoMetadata = (incoming: grpc.Metadata): grpc.Metadata => {
    const md = new grpc.Metadata();
    const trace = incoming.get('trace-bin')[0];
    if (trace !== undefined) md.set('echo-bin', trace as Buffer);
    // Who the call came from, as a sidecar tells its app (mesh tests).
    const xfcc = incoming.get('x-forwarded-client-cert')[0];
    if (xfcc !== undefined) md.set('echo-xfcc', String(xfcc));
    md.set('served-by', 'echo');
    return md;
  };
  server.addService(EchoService.service, {
    unary(call: grpc.ServerUnaryCall<{ message: string; failWith: number; delayMs: number }, EchoReply>, cb: grpc.sendUnaryData<EchoReply>) {
      count('unary', call);
      const { message, delayMs } = call.request;
      const failWith = s.failNext.shift() ?? call.request.failWith;
      const answer = (): void => {
        if (failWith) {
          const md = new grpc.Metadata();
          md.set('err-bin', Buffer.from([0, 1, 2, 255]));
          md.set('err-text', 'details');
          cb({ code: failWith, details: message || 'failed as asked', metadata: md });
          return;
        }
        call.sendMetadata(echoMetadata(call.metadata));
        const trailer = new grpc.Metadata();
        trailer.set('trailer-bin', Buffer.from([9, 8, 7]));
        cb(null, { message, seen: s.calls.get('unary') ?? 0 }, trailer);
      };
      if (delayMs < 0) return;
      if (delayMs > 0) setTimeout(answer, delayMs);
      else answer();
    },
    serverStream(call: grpc.ServerWritableStream<{ count: number; intervalMs: number }, EchoReply>) {
      count('serverStream', call);
      s.open++;
      let sent = 0;
      const timer = setInterval(() => {
        if (call.cancelled) return;
        call.write({ message: `tick ${sent}`, seen: sent });
        sent++;
        if (call.request.count > 0 && sent >= call.request.count) stop(true);
      }, Math.max(1, call.request.intervalMs));
      const stop = (end: boolean): void => {
        clearInterval(timer);
        s.open--;
        if (end) call.end();
      };
      call.on('cancelled', () => stop(false));
    },
    clientStream(call: grpc.ServerReadableStream<{ message: string }, EchoReply>, cb: grpc.sendUnaryData<EchoReply>) {
      count('clientStream', call);
      let n = 0;
      call.on('data', () => n++);
      call.on('end', () => {
        s.clientStreamsEnded++;
        cb(null, { message: 'received', seen: n });
      });
    },
  });
  (s as { port: number }).port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port))),
  );
  return s;
}

export type EchoClient = grpc.Client & {
  unary(req: object, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, reply?: EchoReply) => void): grpc.ClientUnaryCall;
  serverStream(req: object, md?: grpc.Metadata, opts?: grpc.CallOptions): grpc.ClientReadableStream<EchoReply>;
  clientStream(md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, reply?: EchoReply) => void): grpc.ClientWritableStream<object>;
};

/** A plaintext (h2c) client of `host:port` that sends `authority` as :authority. */
export function echoClient(port: number, authority: string, host = '127.0.0.1'): EchoClient {
  return new EchoService(`${host}:${port}`, grpc.credentials.createInsecure(), { 'grpc.default_authority': authority }) as unknown as EchoClient;
}

export interface UnaryResult {
  err: grpc.ServiceError | null;
  reply?: EchoReply;
  headers?: grpc.Metadata;
  trailers?: grpc.Metadata;
}

/** One unary call; resolves with the error or the reply and both metadata sets. */
export function unary(client: EchoClient, req: object, md = new grpc.Metadata(), opts: grpc.CallOptions = {}): Promise<UnaryResult> {
  return new Promise((resolve) => {
    const out: UnaryResult = { err: null };
    const call = client.unary(req, md, opts, (err, reply) => {
      out.err = err;
      if (reply) out.reply = reply;
    });
    call.on('metadata', (m) => (out.headers = m));
    call.on('status', (st) => {
      out.trailers = st.metadata;
      resolve(out);
    });
  });
}

export { grpc };
