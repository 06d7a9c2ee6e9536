// The ACME HTTP-01 stage, which only a gateway's plaintext listeners run: a request for
// `/.well-known/acme-challenge/<token>` that the gateway's ACME client is waiting on is answered with
// the key authorization before routing, so a certificate can be issued for a host no route serves yet.
// The answer may have to be looked up where the ordering process published it (another worker's or
// replica's order): then the request waits for that look-up.

import type { Exchange, StageResult } from './exchange.js';
import { DONE, factsOf } from './exchange.js';

const ACME_PREFIX = '/.well-known/acme-challenge/';

export function acmeChallenge(ex: Exchange): StageResult | Promise<StageResult> {
  const { listener } = ex;
  const path = factsOf(ex).path;
  if (!listener.acmeChallenge || !path.startsWith(ACME_PREFIX)) return undefined;
  const answer = listener.acmeChallenge(path.slice(ACME_PREFIX.length));
  return typeof answer === 'object' ? answer.then((a) => (ex.res.destroyed ? DONE : reply(ex, a))) : reply(ex, answer);
}

function reply(ex: Exchange, answer: string | undefined): StageResult {
  const { res, record } = ex;
  if (answer === undefined) return undefined;
  record.details = 'acme_challenge';
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(answer) });
  res.end(answer);
  return DONE;
}
