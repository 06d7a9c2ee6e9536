// Loopback helpers for tests that start whole processes: the app port of a sidecar without an app,
// and a GET on a new connection, so that successive calls may land on different worker processes.

import { get as httpGet } from 'node:http';

/**
 * The app port of a sidecar that has no app (a client that only calls out): nothing can listen on
 * port 0, so traffic to its inbound side fails there rather than reaching whatever another test
 * bound to a port that was free when looked at.
 */
export const NO_APP = 0;

export function freshGet(port: number, host: string, path: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; text: string }> {
  return new Promise((resolve, reject) => {
    const req = httpGet({ host: '127.0.0.1', port, path, agent: false, headers: { host, ...headers } }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (s: string) => (text += s));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
    });
    req.on('error', reject);
  });
}
