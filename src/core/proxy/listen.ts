// Opening a listening socket for a proxy port and reporting the port actually bound (0 asks the
// system for any free one), with a bind failure (port in use) as a rejected promise, not a crash;
// and saying such a failure the way an operator needs it: which port, for what, and why.

import type { Server } from 'node:net';

export function listenOn(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const addr = server.address();
      resolve(typeof addr === 'object' && addr ? addr.port : port);
    });
  });
}

const REASONS: Readonly<Record<string, string>> = {
  EADDRINUSE: 'the address is already in use',
  EACCES: 'permission denied (ports below 1024 need privileges)',
  EADDRNOTAVAIL: 'this machine has no such address',
};

/** A port that could not be opened; `code` and `port` are kept from the system's error. */
export class ListenError extends Error {
  readonly code: string | undefined;
  readonly port: number;

  constructor(what: string, host: string, port: number, cause: unknown) {
    const code = (cause as NodeJS.ErrnoException | undefined)?.code;
    super(`${what}: cannot listen on ${host}:${port}: ${(code && REASONS[code]) ?? (cause as Error)?.message ?? String(cause)}`, { cause });
    this.code = code;
    this.port = port;
  }
}

/** Runs `listen`; its failure becomes a ListenError naming `what` the port is for. */
export async function listenFor<T>(what: string, host: string, port: number, listen: () => Promise<T>): Promise<T> {
  try {
    return await listen();
  } catch (err) {
    throw new ListenError(what, host, port, err);
  }
}
