// A module of meshgate's own loaded the first time it is asked for rather than when the program
// starts. V8 keeps every loaded module's source text and function records for as long as the process
// lives, whether or not its code ever runs: a sidecar loaded the validators of kinds it is never sent,
// the Gateway API translation and the gateway's listener compiler. Loading is synchronous (Node's
// require() of an ES module), so the callers stay synchronous; a module already imported elsewhere is
// the same instance.
//
// Node 20 before 20.19 cannot require() an ES module. There each module named here is imported as soon
// as it is named, and a command runs once they are in (whenNeededLoaded, awaited by the CLI), as every
// module was loaded before this file existed.

import { createRequire } from 'node:module';

const requireLoadsModules = (process.features as { require_module?: boolean }).require_module === true;
const importing: Array<Promise<unknown>> = [];

/** `specifier` resolved from `parentUrl` (the caller's import.meta.url), loaded on the first call. */
export function whenNeeded<M>(specifier: string, parentUrl: string): () => M {
  let loaded: M | undefined;
  if (requireLoadsModules) return () => (loaded ??= createRequire(parentUrl)(specifier) as M);
  const url = new URL(specifier, parentUrl).href;
  importing.push(import(url).then((m: M) => (loaded = m)));
  return () => {
    if (loaded === undefined) throw new Error(`${url} is not loaded yet: await whenNeededLoaded() first`);
    return loaded;
  };
}

/** Resolves once every module named so far is loaded (at once where Node can require() them). */
export async function whenNeededLoaded(): Promise<void> {
  await Promise.all(importing);
}
