// An upstream on a bare TCP socket that records every byte a proxy sends it, for request-smuggling
// probes: what matters is what arrived on the wire, not what an HTTP parser made of it. It answers
// each request it can delimit (Content-Length or chunked) with `200 ok`, so a proxy's well-formed
// requests complete; anything else is only recorded. While `hold` is set it answers the first request
// head of each connection at once, before any body, with half of a 10-byte answer (`first`), and
// sends the rest (`-last`) when the test calls `release()`: an answer in flight, for as long as the
// test needs one.

import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { startTestGateway, type TestGateway } from './gateway.js';
import { gatewayRouteYaml, gatewayYaml, serviceYaml } from './cluster-yaml.js';

export interface RawUpstream {
  readonly port: number;
  /** Every connection's bytes, latin1, in the order the connections came. */
  readonly connections: string[];
  /** Where every connection's record ends now, for `since`. */
  mark(): number[];
  /** The bytes recorded after `mark` on every connection, and the request lines among them (`POST /x HTTP/1.1`). */
  since(mark: readonly number[]): { readonly bytes: string; readonly requestLines: string[] };
  /** Answer request heads at once with half an answer, kept until `release()`. */
  hold: boolean;
  /** Completes the answers held so far. */
  release(): void;
  close(): Promise<void>;
}

const ANSWER = 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-type: text/plain\r\n\r\nok';

export async function startRawUpstream(): Promise<RawUpstream> {
  const connections: string[] = [];
  const sockets = new Set<Socket>();
  const held: Socket[] = [];
  const state = { hold: false };
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    const index = connections.push('') - 1;
    let pending = '';
    socket.on('data', (d: Buffer) => {
      const text = d.toString('latin1');
      connections[index] += text;
      if (state.hold) {
        if (!held.includes(socket) && connections[index]!.includes('\r\n\r\n')) {
          held.push(socket);
          socket.write('HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nfirst');
        }
        return;
      }
      pending += text;
      for (let used = complete(pending); used > 0; used = complete(pending)) {
        pending = pending.slice(used);
        socket.write(ANSWER);
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    connections,
    mark: () => connections.map((c) => c.length),
    since: (mark) => {
      const added = connections.map((c, i) => c.slice(mark[i] ?? 0));
      const requestLines = added.flatMap((c) => [...c.matchAll(/^[A-Z]+ \S+ HTTP\/1\.[01]\r$/gm)].map((m) => m[0].slice(0, -1)));
      return { bytes: added.join(''), requestLines };
    },
    get hold() {
      return state.hold;
    },
    set hold(on: boolean) {
      state.hold = on;
    },
    release: () => {
      for (const socket of held.splice(0)) socket.write('-last');
    },
    close: () =>
      new Promise((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/** The length of the first whole request in `text` (head and body), or 0 when it is not all there. */
function complete(text: string): number {
  const headEnd = text.indexOf('\r\n\r\n');
  if (headEnd < 0) return 0;
  const head = text.slice(0, headEnd).toLowerCase();
  const bodyStart = headEnd + 4;
  if (/\r\ntransfer-encoding:[^\r]*chunked/.test(head)) {
    const end = text.indexOf('\r\n0\r\n\r\n', bodyStart - 2);
    return end < 0 ? 0 : end + 7;
  }
  const length = Number(/\r\ncontent-length: *(\d+)/.exec(head)?.[1] ?? 0);
  return text.length >= bodyStart + length ? bodyStart + length : 0;
}

/** A gateway routing `host` to a fresh byte-recording upstream, with `files` (policies) beside the routes. */
export async function gatewayOnRawUpstream(host: string, files: Record<string, string> = {}): Promise<{ upstream: RawUpstream; gw: TestGateway }> {
  const upstream = await startRawUpstream();
  const gw = await startTestGateway({
    'gateway.yaml': gatewayYaml([host]),
    'services.yaml': serviceYaml('app', [{ pod: 'app-1', port: upstream.port }]),
    'routes.yaml': gatewayRouteYaml([host]),
    ...files,
  });
  return { upstream, gw };
}
