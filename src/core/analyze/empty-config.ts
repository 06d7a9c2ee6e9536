// Configuration that is missing rather than wrong, which no per-resource check can see: a config file
// that holds no resource at all (emptied, or cut short by a write still in progress: `>` truncates
// before it writes), a folder with no config files, and Gateways with no routes, where the gateway
// answers 404 NR to everything. A config with no Gateway either is mesh config (ServiceEntries and
// policies for sidecars, as Istio's egress and security tasks apply it), which needs no route. Hot reload says the same when a file it served is emptied
// (snapshot/emptied-files.ts); this is the offline view, with no earlier snapshot to compare with.

import type { LoadResult } from '../config/load.js';
import type { Problem } from '../config/problem.js';
import { MESSAGES } from './finding.js';

const ROUTE_KINDS = new Set(['VirtualService', 'HTTPRoute', 'GRPCRoute', 'TLSRoute', 'TCPRoute']);
const GATEWAY_KINDS = new Set(['Gateway', 'KubernetesGateway']);

/** `files`: the config files of the folder, as the loader names them in origins (folder/name). */
export function emptyConfigFindings(folder: string, files: readonly string[], loaded: LoadResult): Problem[] {
  const out: Problem[] = [];
  const at = (file: string, type: { code: string; severity: Problem['severity'] }, message: string): Problem => ({ severity: type.severity, file, line: file === folder ? 0 : 1, resource: '', field: '', code: type.code, message });
  const used = new Set([...loaded.resources.map((r) => r.origin.file), ...loaded.problems.map((p) => p.file)]);
  for (const f of files) {
    if (used.has(f)) continue;
    out.push(at(f, MESSAGES.EmptyConfigFile, 'this file holds no resource (empty, or only comments): a file emptied by mistake or cut short by a write in progress drops every route it held; delete the file if that is the intent'));
  }
  if (files.length === 0) {
    out.push(at(folder, MESSAGES.NoRoutes, `the folder holds no config files (*.yaml, *.yml, *.json): a gateway started on it answers 404 NR to every request; is this the right folder?`));
  } else if (loaded.resources.some((r) => GATEWAY_KINDS.has(r.kind)) && !loaded.resources.some((r) => ROUTE_KINDS.has(r.kind))) {
    out.push(at(folder, MESSAGES.NoRoutes, `the config holds Gateways but no routes (no VirtualService or HTTPRoute, GRPCRoute, TLSRoute, TCPRoute): the gateway answers 404 NR to every request; a file holding them may be missing or cut short`));
  }
  return out;
}
