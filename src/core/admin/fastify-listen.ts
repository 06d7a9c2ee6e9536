// Starting and stopping the small fastify servers every proxy runs beside its data path (status and
// admin ports): listen and report the port actually bound (0 = any free port), close without throwing.

import type { FastifyInstance } from 'fastify';

export async function listenFastify(app: FastifyInstance, port: number, host: string): Promise<number> {
  await app.listen({ port, host });
  const addr = app.server.address();
  return typeof addr === 'object' && addr ? addr.port : port;
}

export async function closeFastify(app: FastifyInstance): Promise<void> {
  await app.close().catch(() => undefined);
}
