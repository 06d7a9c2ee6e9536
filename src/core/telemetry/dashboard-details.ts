// What a dashboard node's panel lists beside its traffic: the VirtualServices that route to the
// node's service, and the configuration problems that name it. Shared by the control plane (the
// whole mesh's configuration) and a gateway (its own snapshot).

import { formatProblem, type Problem } from '../config/problem.js';
import type { Resource } from '../model/resource.js';
import type { NodeDetails } from './dashboard-page.js';
import type { GraphNode } from './service-graph.js';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A VirtualService as one line: name, hosts, and where its routes go. */
function describeRoutes(r: Resource): { line: string; destinations: string[] } {
  const spec = isObj(r.spec) ? r.spec : {};
  const hosts = Array.isArray(spec['hosts']) ? spec['hosts'].map(String) : [];
  const destinations: string[] = [];
  for (const kind of ['http', 'tls', 'tcp']) {
    for (const route of Array.isArray(spec[kind]) ? spec[kind] : []) {
      for (const d of isObj(route) && Array.isArray(route['route']) ? route['route'] : []) {
        const dest = isObj(d) && isObj(d['destination']) ? d['destination'] : undefined;
        if (dest && typeof dest['host'] === 'string') destinations.push(`${dest['host']}${typeof dest['subset'] === 'string' ? `/${dest['subset']}` : ''}${typeof d['weight'] === 'number' ? ` ${d['weight']}%` : ''}`);
      }
    }
  }
  return { line: `VirtualService ${r.metadata.namespace}/${r.metadata.name}: ${hosts.join(', ')} → ${[...new Set(destinations)].join(', ') || '(no route)'}`, destinations };
}

export function nodeDetails(nodes: readonly GraphNode[], resources: readonly Resource[], problems: readonly Problem[]): Record<string, NodeDetails> {
  const virtualServices = resources.filter((r) => r.kind === 'VirtualService').map(describeRoutes);
  const out: Record<string, NodeDetails> = {};
  for (const n of nodes) {
    // A workload's service is its app; a gateway's routes are every VirtualService bound to it.
    const name = n.app !== 'unknown' ? n.app : n.workload;
    const matches = (host: string): boolean => host === name || host.startsWith(`${name}.`);
    const routes = n.kind === 'gateway'
      ? virtualServices.map((v) => v.line)
      : virtualServices.filter((v) => v.destinations.some((d) => matches(d.split(/[/ ]/)[0]!))).map((v) => v.line);
    const named = problems.filter((p) => p.resource.includes(name) || p.message.includes(name));
    out[n.id] = { routes, problems: named.map(formatProblem) };
  }
  return out;
}
