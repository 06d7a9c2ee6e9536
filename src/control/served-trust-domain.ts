// The trust domain the control plane's CA signs workload certificates for, decided in one place:
// the `--trust-domain` flag when given (an operator's explicit choice for this process), else the
// `trustDomain` of the mesh config being served (the istio ConfigMap's `data.mesh`), else
// cluster.local. It is read at every signing, so a mesh config that moves the mesh to another
// domain takes effect for the next certificate each proxy asks for, without a restart. Proxies take
// their trust domain from the certificate they are issued (core/pki/trust-domain.ts).

import type { Logger } from 'pino';
import type { Resource } from '../core/model/resource.js';
import { DEFAULT_TRUST_DOMAIN } from '../core/pki/spiffe.js';
import { meshTrustDomains } from '../core/pki/trust-domain.js';

export class ServedTrustDomain {
  #resources: () => readonly Resource[] | undefined = () => undefined;
  #last: string | undefined;

  constructor(
    private readonly flag: string | undefined,
    private readonly log?: Logger,
  ) {}

  /** Where the mesh config being served is read (the control plane's current set). */
  follow(resources: () => readonly Resource[] | undefined): void {
    this.#resources = resources;
  }

  current(): string {
    const set = this.#resources();
    const fromMesh = set ? meshTrustDomains(set).trustDomain : undefined;
    const td = this.flag ?? fromMesh ?? DEFAULT_TRUST_DOMAIN;
    if (td !== this.#last) {
      this.#last = td;
      if (this.flag !== undefined && fromMesh !== undefined && fromMesh !== this.flag) {
        this.log?.warn({ trustDomain: td, meshConfigTrustDomain: fromMesh }, 'the --trust-domain flag overrides the mesh config\'s trustDomain');
      } else this.log?.info({ trustDomain: td, from: this.flag !== undefined ? '--trust-domain' : fromMesh !== undefined ? 'mesh config' : 'default' }, 'workload certificates are issued in this trust domain');
    }
    return td;
  }
}
