// The admin port's server (15000, loopback only). It is node:http; the admin routes (admin-server.ts,
// on fastify) are built on the first request to it. Few proxies are ever asked, and fastify with its
// schema compilers is a good part of the memory a sidecar would otherwise hold from its start.

import { createServer, type Server } from 'node:http';
import type { FastifyInstance } from 'fastify';
import { EndpointFailures, internalFailure, sendEndpointFailure } from '../proxy/respond.js';
import { namesThisMachine } from './local-only.js';
import { DRAIN_LISTENERS_PATH, QUIT_PATH, serveLifecycleAction } from './lifecycle-endpoints.js';

export interface AdminPort {
  readonly server: Server;
  close(): Promise<void>;
}

/**
 * `quit`: where POST /quitquitquit goes, `drainListeners` POST /drain_listeners (Envoy's admin has
 * both); absent, the path is the admin routes' 404.
 */
export function createAdminPort(build: () => Promise<FastifyInstance>, quit?: () => void, drainListeners?: () => void): AdminPort {
  let app: Promise<FastifyInstance> | undefined;
  const ready = (): Promise<FastifyInstance> =>
    (app ??= build().then(async (a) => {
      await a.ready();
      return a;
    }));
  const server = createServer((req, res) => {
    // A page in a browser on this machine that re-pointed its own name here reads nothing (local-only.ts).
    if (!namesThisMachine(req)) return sendEndpointFailure(res, EndpointFailures.foreignName);
    // Answered here, before the routes load: ending the proxy should not first load fastify.
    const path = (req.url ?? '/').split('?')[0];
    if (quit && path === QUIT_PATH) return serveLifecycleAction(req, res, quit);
    if (drainListeners && path === DRAIN_LISTENERS_PATH) return serveLifecycleAction(req, res, drainListeners);
    ready().then(
      // What fastify's own server would call: its router, hooks and replies, unchanged.
      (a) => a.routing(req, res),
      (err: unknown) => {
        app = undefined; // the next request tries again
        sendEndpointFailure(res, internalFailure(`admin routes failed to load: ${(err as Error).message}`));
      },
    );
  });
  return {
    server,
    close: async () => {
      await closeHttpServer(server);
      if (app) await (await app.catch(() => undefined))?.close().catch(() => undefined);
    },
  };
}

/** Stops a small local server (status, admin): no new connections, open ones cut; never throws. */
export function closeHttpServer(server: Server): Promise<void> {
  if (!server.listening) return Promise.resolve();
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
