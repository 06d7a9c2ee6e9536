// The CORS stage of the request pipeline (a route's corsPolicy, evaluated by ../cors.ts): a preflight
// is answered here with the allowed methods and headers; an actual cross-origin request goes on, and
// the headers that tell the browser it may read the answer are set before any answer is written, so
// local replies, redirects and direct responses carry them too.

import { evaluateCors } from '../cors.js';
import type { Exchange, StageResult } from './exchange.js';
import { DONE, factsOf } from './exchange.js';

export function cors(ex: Exchange): StageResult {
  const policy = ex.route?.action.cors;
  if (!policy) return undefined;
  const { res, req, record } = ex;
  const decision = evaluateCors(policy, factsOf(ex).method, req.headers);
  if (!decision) return undefined;
  if (decision.kind !== 'actual') {
    record.details = 'cors_response';
    res.writeHead(200, { ...(decision.kind === 'preflight' ? decision.headers : {}), server: 'istio-envoy', 'content-length': '0' });
    res.end();
    return DONE;
  }
  ex.corsHeaders = decision.headers;
  for (const [name, value] of Object.entries(decision.headers)) res.setHeader(name, value);
  return undefined;
}
