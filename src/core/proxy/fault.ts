// Fault injection (VirtualService `fault`, docs/reference/routing.md): before a request goes upstream it may be
// held for a fixed delay (flag DI), then answered locally with an abort (flag FI), each at its own
// percentage. The draws come from the injected random source, so tests know exactly which fire.

import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import type { FaultPolicy, PerMillion } from '../routing/types.js';
import { faultAbort, type LocalReply } from './respond.js';
import { isGrpcRequest } from './grpc-status.js';

const MILLION = 1_000_000;

export interface FaultDecision {
  /** Hold the request this long before going on. */
  readonly delayMs?: number;
  /** Answer with this instead of forwarding (after the delay, if both fire). */
  readonly abort?: LocalReply;
}

/** Envoy's fractional-percent check on a per-million chance; a certain fault draws nothing. */
function fires(chance: PerMillion, random: () => number): boolean {
  return chance >= MILLION || Math.floor(random() * MILLION) < chance;
}

/** Which parts of the fault fire for one request; undefined when neither does. */
export function decideFault(fault: FaultPolicy, random: () => number, headers: IncomingHttpHeaders): FaultDecision | undefined {
  const delay = fault.delay && fires(fault.delay.chance, random) ? fault.delay.ms : undefined;
  const a = fault.abort;
  const abort = a && fires(a.chance, random) ? faultAbort(a.httpStatus, a.grpcStatus, isGrpcRequest(headers)) : undefined;
  if (delay === undefined && !abort) return undefined;
  return { ...(delay !== undefined ? { delayMs: delay } : {}), ...(abort ? { abort } : {}) };
}

/** Waits out an injected delay; false when the client went away meanwhile (nothing more to do). */
export function holdFor(ms: number, res: ServerResponse): Promise<boolean> {
  return new Promise((resolve) => {
    const onClose = (): void => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      res.off('close', onClose);
      resolve(!res.destroyed);
    }, ms);
    res.once('close', onClose);
  });
}
