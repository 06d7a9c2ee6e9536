// Runs a real gateway on a temporary config folder, on loopback and ephemeral ports, and sends it
// requests with undici — the way a test sees the gateway from outside.

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pino } from 'pino';
import { request } from 'undici';
import { startGateway, type GatewayOptions, type RunningGateway } from '../../src/gateway/main.js';
import type { IdentityProvider } from '../../src/core/pki/types.js';
import { seededRandom } from './random.js';

export interface TestGateway {
  readonly gw: RunningGateway;
  readonly dir: string;
  readonly port: number;
  write(file: string, yaml: string): Promise<void>;
  get(host: string, path?: string, headers?: Record<string, string>, method?: string, body?: Body): Promise<Reply>;
  close(): Promise<void>;
}

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json<T = Record<string, unknown>>(): T;
}

export async function startTestGateway(
  files: Record<string, string>,
  opts: {
    gatewayPort?: number;
    seed?: number;
    accessLog?: string;
    identity?: IdentityProvider;
    certsDir?: string;
    locality?: string;
    now?: () => number;
    /** Further gateway options (Redis, trusted proxies, a logger). */
    gateway?: Partial<GatewayOptions>;
  } = {},
): Promise<TestGateway> {
  const dir = await mkdtemp(join(tmpdir(), 'meshgate-test-'));
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
  const gatewayPort = opts.gatewayPort ?? 80;
  const gw = await startGateway({
    configDir: dir,
    ports: new Map([[gatewayPort, 0]]),
    listenHost: '127.0.0.1',
    statusPort: 0,
    adminPort: 0,
    accessLog: opts.accessLog ?? 'off',
    logger: pino({ level: 'silent' }),
    random: seededRandom(opts.seed ?? 42),
    ...(opts.identity ? { identity: opts.identity } : {}),
    ...(opts.certsDir ? { certsDir: opts.certsDir } : {}),
    ...(opts.locality ? { locality: opts.locality } : {}),
    ...(opts.now ? { now: opts.now } : {}),
    ...opts.gateway,
  });
  const port = gw.listenPorts.get(gatewayPort)!;
  return {
    gw,
    dir,
    port,
    write: (file, yaml) => writeFile(join(dir, file), yaml),
    get: (host, path = '/', headers = {}, method = 'GET', body) => send(port, host, path, headers, method, body),
    close: async () => {
      await gw.destroy();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A request body: a Readable is sent without Content-Length (chunked), as a streaming client does. */
export type Body = string | Buffer | Readable;

/** `bytes` as a body of unknown length: HTTP/1 sends it chunked. */
export function chunked(bytes: Buffer | string): Readable {
  return Readable.from([Buffer.from(bytes)]);
}

export async function send(port: number, host: string, path: string, headers: Record<string, string> = {}, method = 'GET', body?: Body): Promise<Reply> {
  const r = await request(`http://127.0.0.1:${port}${path}`, { method: method as 'GET', headers: { host, ...headers }, ...(body !== undefined ? { body } : {}) });
  const text = await r.body.text();
  const json = () => {
    try {
      return JSON.parse(text);
    } catch {
      // The answer itself says why (a local reply, a flag), where "Unexpected end of JSON input" would not.
      throw new Error(`not JSON: ${r.statusCode} ${JSON.stringify(text.slice(0, 200))} ${JSON.stringify(r.headers)}`);
    }
  };
  return { status: r.statusCode, headers: r.headers, text, json };
}

/**
 * Waits until `check` passes (config reloads are asynchronous), up to `ms`: generous, since it returns
 * as soon as the condition holds and a loaded machine can take seconds to reload.
 */
export async function eventually(check: () => Promise<boolean>, ms = 20_000): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    if (await check()) return;
    if (Date.now() > until) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 25));
  }
}

/**
 * The JSON lines of a log another process is still writing, leaving out the last one until its
 * newline is there: a read can land in the middle of a write, and half a line is not JSON yet.
 */
export function completeJsonLines(text: string): Array<Record<string, unknown>> {
  const end = text.lastIndexOf('\n');
  return end < 0 ? [] : text.slice(0, end).split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** The access log line (JSON) of the request with this x-request-id, once the log has it. */
export async function accessLogLine(file: string, requestId: string, ms = 20_000): Promise<Record<string, unknown>> {
  const { readFile } = await import('node:fs/promises');
  let found: Record<string, unknown> | undefined;
  await eventually(async () => {
    const text = await readFile(file, 'utf8').catch(() => '');
    found = completeJsonLines(text).find((l) => l.request_id === requestId);
    return found !== undefined;
  }, ms);
  return found!;
}
