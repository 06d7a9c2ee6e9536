// ReferenceGrant: a reference from one namespace into another (a route's backendRef to a Service, a
// Gateway's certificateRef to a Secret) holds only when the target namespace holds a grant naming
// the referring group/kind/namespace and the target's group/kind (and name, when it gives one).

import type { ReferenceGrantSpec } from '../model/gateway-api.js';
import type { Resource } from '../model/resource.js';

export interface GrantQuestion {
  readonly fromGroup: string;
  readonly fromKind: string;
  readonly fromNamespace: string;
  readonly toGroup: string;
  readonly toKind: string;
  readonly toNamespace: string;
  readonly toName: string;
}

export class ReferenceGrants {
  readonly #byNamespace = new Map<string, Resource<ReferenceGrantSpec>[]>();

  constructor(grants: readonly Resource<ReferenceGrantSpec>[]) {
    for (const g of grants) {
      const list = this.#byNamespace.get(g.metadata.namespace) ?? [];
      list.push(g);
      this.#byNamespace.set(g.metadata.namespace, list);
    }
  }

  /** A reference within one namespace needs no grant. */
  allows(q: GrantQuestion): boolean {
    if (q.fromNamespace === q.toNamespace) return true;
    return (this.#byNamespace.get(q.toNamespace) ?? []).some(
      (g) =>
        (g.spec.from ?? []).some((f) => f.group === q.fromGroup && f.kind === q.fromKind && f.namespace === q.fromNamespace) &&
        (g.spec.to ?? []).some((t) => t.group === q.toGroup && t.kind === q.toKind && (t.name === undefined || t.name === '' || t.name === q.toName)),
    );
  }
}
