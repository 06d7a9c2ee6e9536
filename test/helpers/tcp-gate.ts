// A TCP port a test points a client at (the ACME server's HTTP-01 validation, say) and then decides
// where its connections go: held (accepted, nothing sent on, so the test knows the client has come
// and can act while it waits), passed on to a port, or cut. Held connections are passed on or cut
// when the test says; the first line of each request and of each answer is kept.

import { connect, createServer, type Server, type Socket } from 'node:net';

export interface TcpGate {
  readonly port: number;
  /** Connections that have sent something so far. */
  readonly arrived: number;
  /** The first line of each answer that came back through the gate (`HTTP/1.1 200 OK`, say). */
  readonly answers: string[];
  /** The first line of each request that came in (`GET /.well-known/acme-challenge/… HTTP/1.1`, say). */
  readonly requests: string[];
  /** Resolves once `n` connections in all have sent something. */
  arrivals(n: number): Promise<void>;
  /** New connections wait here until `forwardTo` or `cut`. */
  hold(): void;
  /** Held and new connections go to this loopback port. */
  forwardTo(port: number): void;
  /** Held connections are reset. */
  cut(): void;
  close(): Promise<void>;
}

export async function startTcpGate(): Promise<TcpGate> {
  let target: number | undefined;
  let arrived = 0;
  const held = new Map<Socket, (port: number) => void>();
  const all = new Set<Socket>();
  const waiters: Array<{ n: number; resolve: () => void }> = [];
  const answers: string[] = [];
  const requests: string[] = [];
  /** What a held connection has sent so far, sent on when it is passed on. */
  const buffered = new Map<Socket, Buffer[]>();
  const pass = (client: Socket, port: number): void => {
    const upstream = connect(port, '127.0.0.1');
    all.add(upstream);
    for (const b of buffered.get(client) ?? []) upstream.write(b);
    buffered.delete(client);
    let first = '';
    upstream.on('data', (d: Buffer) => {
      if (!first) {
        first = d.toString('latin1').split('\r\n')[0] ?? '';
        answers.push(first);
      }
    });
    client.pipe(upstream).pipe(client);
    const end = (): void => {
      client.destroy();
      upstream.destroy();
    };
    upstream.on('error', end);
    client.on('error', end);
    upstream.on('close', end);
    client.on('close', end);
  };
  const server: Server = createServer((client) => {
    all.add(client);
    client.on('close', () => all.delete(client));
    const chunks: Buffer[] = [];
    buffered.set(client, chunks);
    const keep = (d: Buffer): void => {
      chunks.push(d);
      if (chunks.length > 1) return;
      requests.push(d.toString('latin1').split('\r\n')[0] ?? '');
      arrived++;
      for (const w of [...waiters]) {
        if (arrived < w.n) continue;
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
    };
    client.on('data', keep);
    const release = (port: number): void => {
      client.off('data', keep);
      pass(client, port);
    };
    if (target === undefined) {
      held.set(client, release);
      client.on('close', () => held.delete(client));
    } else release(target);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    get arrived() {
      return arrived;
    },
    answers,
    requests,
    arrivals: (n) => (arrived >= n ? Promise.resolve() : new Promise((resolve) => waiters.push({ n, resolve }))),
    hold: () => {
      target = undefined;
    },
    forwardTo: (port) => {
      target = port;
      for (const [c, release] of [...held]) {
        held.delete(c);
        release(port);
      }
    },
    cut: () => {
      for (const c of held.keys()) c.resetAndDestroy();
      held.clear();
    },
    close: async () => {
      for (const s of all) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
