// Validation of security.istio.io PeerAuthentication (docs/security.md): the mode names, portLevelMtls
// only under a selector and keyed by valid ports, and a warning for the selector policies in the root
// namespace that Istio ignores.

import { strictFields } from './validate-authorization-policy.js';
import { Checker, asEnum, asObj, checkWorkloadSelector, isObj, isSet, type Obj } from './validate-common.js';

const MODES = ['UNSET', 'DISABLE', 'PERMISSIVE', 'STRICT'] as const;
/** The default root namespace; validation does not know a configured one, so the warning names it. */
const ROOT_NAMESPACE = 'istio-system';

export function validatePeerAuthentication(c: Checker, spec: Obj): void {
  strictFields(c, spec, ['spec'], ['selector', 'mtls', 'portLevelMtls']);
  checkWorkloadSelector(c, spec.selector, ['spec', 'selector'], 'matchLabels');
  const matchLabels = isObj(spec.selector) ? spec.selector.matchLabels : undefined;
  const hasSelector = isObj(matchLabels) && Object.keys(matchLabels).length > 0;
  if (hasSelector && c.resource.metadata.namespace === ROOT_NAMESPACE) {
    c.warn(['spec', 'selector'], `a PeerAuthentication with a selector in the root namespace (${ROOT_NAMESPACE}) is ignored; put it in the workload's namespace`);
  }
  checkMtls(c, spec.mtls, ['spec', 'mtls']);

  if (!isSet(spec.portLevelMtls)) return;
  const ports = asObj(c, spec.portLevelMtls, ['spec', 'portLevelMtls']);
  if (!ports) return;
  if (!hasSelector) c.error(['spec', 'portLevelMtls'], 'portLevelMtls needs a selector with labels: a mesh- or namespace-wide PeerAuthentication cannot set per-port modes');
  if (Object.keys(ports).length === 0) c.error(['spec', 'portLevelMtls'], 'portLevelMtls, if set, must name at least one port');
  for (const [key, value] of Object.entries(ports)) {
    const at = ['spec', 'portLevelMtls', key];
    const port = /^\d{1,5}$/.test(key) ? Number(key) : NaN;
    if (!(port >= 1 && port <= 65535)) c.error(at, `${JSON.stringify(key)} is not a port number (1 to 65535); keys are workload (container) ports`);
    checkMtls(c, value, at);
  }
}

function checkMtls(c: Checker, v: unknown, at: Array<string | number>): void {
  const mtls = asObj(c, v, at);
  if (!mtls) return;
  strictFields(c, mtls, at, ['mode']);
  asEnum(c, mtls.mode, [...at, 'mode'], MODES);
}
