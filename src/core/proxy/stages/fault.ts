// The fault stage of the request pipeline (a route's `fault`, decided by ../fault.ts with the proxy's
// injected random source): as Envoy's fault filter before its router, a delay holds the request
// (flag DI) and an abort answers it (flag FI, the configured status). Only forwarded routes have faults.

import { decideFault, holdFor } from '../fault.js';
import { addFlag } from '../respond.js';
import type { Exchange, StageResult } from './exchange.js';
import { DONE } from './exchange.js';

export function fault(ex: Exchange): StageResult | Promise<StageResult> {
  const action = ex.route?.action;
  if (action?.kind !== 'forward' || !action.fault) return undefined;
  const decision = decideFault(action.fault, ex.ctx.random, ex.req.headers);
  if (!decision) return undefined;
  if (decision.delayMs === undefined) return decision.abort;
  ex.record.flags = addFlag(ex.record.flags, 'DI');
  // A client that went away during the delay has nothing left to be answered.
  return holdFor(decision.delayMs, ex.res).then((stayed) => (stayed ? decision.abort : DONE));
}
