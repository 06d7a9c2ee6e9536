// Parsing helpers shared by the commands: `--ports 80=8080,443=8443`, `--labels a=b,c=d`, `--locality r/z/s`,
// `--trusted-proxies N`, `--redis URL`, and the files flags name.

import { accessSync, constants, readFileSync } from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { CommandError, UsageError } from './main.js';
import { closest } from '../core/config/suggest.js';
import { DEFAULT_GATEWAY_LABELS } from '../core/model/gateway-labels.js';

/** The text of a file a flag names (0: stdin), or one line that names the flag, the file and why not. */
export function readFlagFile(path: string | 0, flag: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new CommandError(`${flag}: cannot read ${path === 0 ? 'stdin' : path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/** Checks, before anything starts, that a file read later (a token, a root certificate) is there and readable. */
export function readableFlagFile(path: string, flag: string): void {
  try {
    accessSync(path, constants.R_OK);
  } catch (err) {
    throw new CommandError(`${flag}: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

export function parse<T extends NonNullable<ParseArgsConfig['options']>>(argv: string[], options: T, allowPositionals = false) {
  try {
    return parseArgs({ args: argv, options, allowPositionals, strict: true });
  } catch (err) {
    throw new UsageError(usageProblem(err as NodeJS.ErrnoException, Object.keys(options)));
  }
}

/**
 * Node's words for a command line it refuses, except an unknown option: Node's text for that tells
 * how to pass a positional starting with '-', which is rarely what happened; a misspelt or misremembered
 * flag is, so it gets the nearest known flag and where the rest are listed.
 */
function usageProblem(err: NodeJS.ErrnoException, known: readonly string[]): string {
  const flag = err.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' ? /'([^']+)'/.exec(err.message)?.[1] : undefined;
  if (flag === undefined) return err.message;
  const near = flag.startsWith('--') ? closest(flag.slice(2), known) : undefined;
  return `unknown option ${flag}${near !== undefined ? `; did you mean --${near}?` : ''} (--help lists the options)`;
}

/** `80=8080,443=8443` → Map(80 → 8080, 443 → 8443); a bare `80` listens on 80. */
export function parsePorts(text: string): Map<number, number> {
  const out = new Map<number, number>();
  for (const part of text.split(',').map((s) => s.trim()).filter(Boolean)) {
    const [from, to = from] = part.split('=');
    const gw = Number(from);
    const listen = Number(to);
    if (!Number.isInteger(gw) || gw < 1 || gw > 65535 || !Number.isInteger(listen) || listen < 0 || listen > 65535) {
      throw new UsageError(`--ports: '${part}' is not GATEWAY_PORT=LISTEN_PORT`);
    }
    out.set(gw, listen);
  }
  if (out.size === 0) throw new UsageError('--ports needs at least one GATEWAY_PORT=LISTEN_PORT');
  return out;
}

/** The label Istio puts on the pods of the Deployment it makes for one Gateway API Gateway (its name). */
export const GATEWAY_NAME_LABEL = 'gateway.networking.k8s.io/gateway-name';

/**
 * `--labels` of a gateway command. Without it, Istio's ingress gateway labels; but a gateway given
 * `--gateway-name` is one dedicated to Gateway API Gateways, and Istio labels such a Deployment's
 * pods with the Gateway's name only: so neither the Gateways that select `istio: ingressgateway` nor
 * the Ingresses (their Gateway selects the mesh config's ingressSelector) are its, as in Istio.
 */
export function gatewayLabels(text: string | undefined, gatewayNames?: ReadonlySet<string>): Record<string, string> {
  if (text) return parseLabels(text);
  if (!gatewayNames) return { ...DEFAULT_GATEWAY_LABELS };
  const [only, ...more] = gatewayNames;
  // Several Gateways have no one name to carry; --labels says what such a gateway is.
  return only !== undefined && more.length === 0 ? { [GATEWAY_NAME_LABEL]: only.slice(only.indexOf('/') + 1) } : {};
}

/** `istio=ingressgateway,app=x` → { istio: 'ingressgateway', app: 'x' }. */
export function parseLabels(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of text.split(',').map((s) => s.trim()).filter(Boolean)) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw new UsageError(`--labels: '${part}' is not key=value`);
    out[part.slice(0, eq)] = part.slice(eq + 1);
  }
  return out;
}

/**
 * A metrics port flag: `0` turns the metrics port off (absent here), so a port the OS chooses is
 * spelled `any` (0 here); the serving log line says which port it got.
 */
export function parseMetricsPort(text: string | undefined, fallback: number, flag: string): number | undefined {
  if (text === 'any') return 0;
  const n = parsePort(text, fallback, flag);
  return n === 0 ? undefined : n;
}

export function parsePort(text: string | undefined, fallback: number, flag: string): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new UsageError(`${flag}: '${text}' is not a port`);
  return n;
}

/** `region/zone/subzone` (zone and subzone optional); no empty parts, no wildcards. */
export function parseLocality(text: string): string {
  const parts = text.split('/');
  if (text === '' || parts.length > 3 || parts.some((p) => p.trim() === '' || p.includes('*'))) {
    throw new UsageError(`--locality: '${text}' is not region, region/zone or region/zone/subzone`);
  }
  return parts.map((p) => p.trim()).join('/');
}

/** `--trusted-proxies N`: 0, 1, 2 …; absent, undefined (the mesh config decides, else 0). */
export function parseTrustedProxies(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`--trusted-proxies: '${text}' is not a number of proxies (0, 1, 2 ...)`);
  return n;
}

/** `--redis redis://host:6379` or `rediss://…`. */
export function parseRedisUrl(text: string): string {
  if (!/^rediss?:\/\/[^/]/.test(text)) throw new UsageError(`--redis: '${text}' is not a redis:// or rediss:// URL`);
  return text;
}
