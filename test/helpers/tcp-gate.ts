// A TCP port a test points a client at (the ACME server's HTTP-01 validation, say) and then decides
// where its connections go: held (accepted, nothing sent on, so the test knows the client has come
// and can act while it waits), passed on to a port, or cut. Held connections are passed on or cut
// when the test says; the first line each target answered is kept.

import { connect, createServer, type Server, type Socket } from 'node:net';

export interface TcpGate {
  readonly port: number;
  /** Connections accepted so far. */
  readonly arrived: number;
  /** The first line of each answer that came back through the gate (`HTTP/1.1 200 OK`, say). */
  readonly answers: string[];
  /** Resolves once `n` connections have arrived in all. */
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
  const held = new Set<Socket>();
  const all = new Set<Socket>();
  const waiters: Array<{ n: number; resolve: () => void }> = [];
  const answers: string[] = [];
  const pass = (client: Socket, port: number): void => {
    const upstream = connect(port, '127.0.0.1');
    all.add(upstream);
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
    arrived++;
    for (const w of [...waiters]) {
      if (arrived < w.n) continue;
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve();
    }
    if (target === undefined) {
      client.pause();
      held.add(client);
      client.on('close', () => held.delete(client));
    } else pass(client, target);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    get arrived() {
      return arrived;
    },
    answers,
    arrivals: (n) => (arrived >= n ? Promise.resolve() : new Promise((resolve) => waiters.push({ n, resolve }))),
    hold: () => {
      target = undefined;
    },
    forwardTo: (port) => {
      target = port;
      for (const c of [...held]) {
        held.delete(c);
        pass(c, port);
        c.resume();
      }
    },
    cut: () => {
      for (const c of [...held]) c.resetAndDestroy();
      held.clear();
    },
    close: async () => {
      for (const s of all) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
