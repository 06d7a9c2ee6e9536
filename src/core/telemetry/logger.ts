// The one way a meshgate process makes its event logger (not the access log): the level and format
// the command line chose (`--log-level`, `--log-format json|text`), JSON when stderr is not a
// terminal and text when it is (as Caddy and istio-proxy do). Each event is one write of one whole
// line to stderr, so events from several workers never mix mid-line, and the access log (stdout)
// is a separate stream. Settings travel in the environment, so forked gateway workers inherit them.

import { writeSync } from 'node:fs';
import type { DestinationStream, Logger, LoggerOptions } from 'pino';
import { pino } from './pino.js';

const LEVEL_ENV = 'MESHGATE_LOG_LEVEL';
const FORMAT_ENV = 'MESHGATE_LOG_FORMAT';
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export const LOG_FORMATS = ['json', 'text'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

export function setLogSettings(settings: { level?: string; format?: LogFormat }): void {
  if (settings.level) process.env[LEVEL_ENV] = settings.level;
  if (settings.format) process.env[FORMAT_ENV] = settings.format;
}

export function logLevel(): string {
  return process.env[LEVEL_ENV] ?? 'info';
}

export function logFormat(): LogFormat {
  const f = process.env[FORMAT_ENV];
  if (f === 'json' || f === 'text') return f;
  return process.stderr.isTTY ? 'text' : 'json';
}

export interface LoggerSettings {
  readonly base?: Record<string, unknown>;
  /**
   * A gateway worker other than the first: the events every worker meets alike (configuration
   * applied, its problems) are said once, by worker 0; this one says only its own (serving, drain,
   * its failures).
   */
  readonly quietWorker?: boolean;
}

export function createLogger(name: string, settings: LoggerSettings = {}): Logger {
  const options: LoggerOptions = { name, level: logLevel(), ...(settings.base ? { base: { pid: process.pid, ...settings.base } } : {}) };
  if (settings.quietWorker) {
    options.hooks = {
      logMethod(args, method) {
        if (isSharedEvent(args as unknown[])) return; // worker 0 says it
        method.apply(this, args as Parameters<typeof method>);
      },
    };
  }
  return pino(options, logFormat() === 'text' ? textDestination(2) : pino.destination({ fd: 2, sync: true }));
}

/** Events every gateway worker meets alike, because each builds the same configuration. */
const SHARED_MESSAGES = ['configuration applied', 'configuration refused', 'configuration source failed', 'Gateway port '];

function isSharedEvent(args: readonly unknown[]): boolean {
  const [first, second] = args;
  if (first && typeof first === 'object' && 'problem' in first) return true;
  const msg = typeof first === 'string' ? first : typeof second === 'string' ? second : '';
  return SHARED_MESSAGES.some((m) => msg.startsWith(m));
}

const LEVEL_NAMES: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
// `problem` repeats what its message already says (file:line resource field: message); JSON keeps it for machines.
const SKIP = new Set(['level', 'time', 'pid', 'hostname', 'name', 'msg', 'problem']);

/** `15:04:05.123 INFO  meshgate-gateway: configuration applied version=1 resources=17`, one write per line. */
export function textDestination(fd: number): DestinationStream {
  return {
    write(chunk: string): void {
      for (const line of chunk.split('\n')) if (line) writeSync(fd, `${formatTextLine(line)}\n`);
    },
  };
}

export function formatTextLine(json: string): string {
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json;
  }
  const time = typeof rec.time === 'number' ? new Date(rec.time).toISOString().slice(11, 23) : '';
  const level = (LEVEL_NAMES[rec.level as number] ?? String(rec.level)).padEnd(5);
  const fields = Object.entries(rec)
    .filter(([k]) => !SKIP.has(k))
    .map(([k, v]) => `${k}=${typeof v === 'string' && !/\s/.test(v) ? v : JSON.stringify(k === 'err' && v && typeof v === 'object' ? (v as { message?: unknown }).message : v)}`);
  return [time, level, `${String(rec.name ?? 'meshgate')}:`, String(rec.msg ?? ''), ...fields].filter(Boolean).join(' ');
}
