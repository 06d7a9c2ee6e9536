// A snapshot's analyzer findings, computed on first read rather than during the build. The analyzers
// judge a configuration and never change what is served, so a reload swaps its snapshot in first and
// the Reloader reads the findings just after (at 10,000 services they are a third of a first build).
// Kept in a module of its own so that the closures a snapshot holds close over the resources, the
// analysis options and the build's problems only, not over everything the build had in scope.
//
// A build without analysis (a sidecar's: its control plane analyzes the whole mesh, as istiod does
// for Envoy) has no findings, and a process that only makes such builds never loads the analyzers.

import type { Problem } from '../config/problem.js';
import type { Resource } from '../model/resource.js';
import type { AnalysisOptions } from '../analyze/context.js';
import { whenNeeded } from '../runtime/when-needed.js';
import type { Snapshot } from './snapshot.js';

const analyzeModule = whenNeeded<typeof import('../analyze/run.js')>('../analyze/run.js', import.meta.url);
const NO_FINDINGS: readonly Problem[] = Object.freeze([]);

export interface DeferredFindings {
  /** The analyzers' findings, run on the first call. */
  readonly findings: () => readonly Problem[];
  /** The build's problems followed by the findings: what snapshot.problems lists. */
  readonly all: () => readonly Problem[];
}

/** `options` undefined: no analysis, the findings are none and `all` is the build's problems. */
export function deferredFindings(resources: readonly Resource[], options: AnalysisOptions | undefined, problems: readonly Problem[]): DeferredFindings {
  if (options === undefined) return { findings: () => NO_FINDINGS, all: () => problems };
  const findings = once(() => analyzeModule().analyze(resources, options));
  return { findings, all: once(() => [...problems, ...findings()]) };
}

/** The frozen snapshot, its `problems` read through `all`. */
export function withProblems(fields: Omit<Snapshot, 'problems'>, all: () => readonly Problem[]): Snapshot {
  return Object.freeze({
    ...fields,
    get problems() {
      return all();
    },
  });
}

/** `make()` run on the first call, its result kept (and `make` let go) for the calls after. */
function once<T>(make: () => T): () => T {
  let pending: (() => T) | undefined = make;
  let made: T;
  return () => {
    if (pending) {
      made = pending();
      pending = undefined;
    }
    return made;
  };
}
