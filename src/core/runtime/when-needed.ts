// A module of meshgate's own loaded the first time it is asked for rather than when the program
// starts. V8 keeps every loaded module's source text and function records for as long as the process
// lives, whether or not its code ever runs: a sidecar loaded the validators of kinds it is never sent,
// the Gateway API translation and the gateway's listener compiler. Loading is synchronous (Node's
// require() of an ES module, Node 20.19 and later), so the callers stay synchronous; a module already
// imported elsewhere is the same instance.

import { createRequire } from 'node:module';

/** `specifier` resolved from `parentUrl` (the caller's import.meta.url), loaded on the first call. */
export function whenNeeded<M>(specifier: string, parentUrl: string): () => M {
  let loaded: M | undefined;
  return () => (loaded ??= createRequire(parentUrl)(specifier) as M);
}
