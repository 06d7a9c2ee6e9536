// A pino logger at debug level whose lines a test reads back as objects.

import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';

export function memoryLogger(): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({ write: (chunk: Buffer, _enc, cb) => (lines.push(...chunk.toString().split('\n').filter(Boolean).map((l) => JSON.parse(l))), cb()) });
  return { logger: pino({ level: 'debug' }, sink), lines };
}
