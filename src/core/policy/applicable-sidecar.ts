// The Sidecar resource that applies to the proxy a snapshot was built for (sidecar-scope.ts says
// which one, with the mesh config's root namespace), worked out once per snapshot for everything
// that reads it: the outbound traffic policy and the ingress listeners. A gateway has none.

import type { Resource } from '../model/resource.js';
import type { Snapshot } from '../snapshot/snapshot.js';
import { DEFAULT_ROOT_NAMESPACE, meshConfigOf } from '../telemetry/telemetry-policy.js';
import { SidecarIndex } from './sidecar-scope.js';

const applicable = new WeakMap<Snapshot, { readonly sidecar: Resource | undefined }>();

export function applicableSidecar(snapshot: Snapshot): Resource | undefined {
  let found = applicable.get(snapshot);
  if (found === undefined) {
    const role = snapshot.role;
    let sidecar: Resource | undefined;
    if (role.kind === 'sidecar') {
      const mesh = meshConfigOf(snapshot.resources);
      const root = typeof mesh?.['rootNamespace'] === 'string' ? mesh['rootNamespace'] : DEFAULT_ROOT_NAMESPACE;
      sidecar = new SidecarIndex(snapshot.resources.filter((r) => r.kind === 'Sidecar'), root).applicable(role.namespace, role.labels);
    }
    found = { sidecar };
    applicable.set(snapshot, found);
  }
  return found.sidecar;
}
