// Validation of the Gateway API's BackendTLSPolicy (v1, and v1alpha3 of the same shape): what its
// CRD's schema and CEL rules demand, at file:line. What is valid but cannot be used (a target
// Service or a CA ConfigMap that does not exist, a reference kind other than ConfigMap) is not an
// error here: the translation reports it in the policy's status (gateway-api/backend-tls.ts), as the
// API asks.

import { checkHostname } from './validate-gateway-api.js';
import { asEnum, asList, asObj, asString, eachObj, isSet, knownFields, type Checker, type Obj } from './validate-common.js';

const URI = /^[A-Za-z][A-Za-z0-9+.-]*:\S+$/;

export function validateBackendTLSPolicy(c: Checker, spec: Obj): void {
  knownFields(c, spec, ['spec'], ['targetRefs', 'validation', 'options']);
  const targets = asList(c, spec.targetRefs, ['spec', 'targetRefs']);
  if (!targets || targets.length === 0) c.error(['spec', 'targetRefs'], 'needs at least one target (a Service)');
  else if (targets.length > 16) c.error(['spec', 'targetRefs'], 'may hold at most 16 targets');
  const seen = new Map<string, boolean>();
  eachObj(c, spec.targetRefs, ['spec', 'targetRefs'], (t, at) => {
    knownFields(c, t, at, ['group', 'kind', 'name', 'sectionName']);
    if (asString(c, t.group, [...at, 'group']) === undefined) c.error([...at, 'group'], 'is required ("" for a Service)');
    if (asString(c, t.kind, [...at, 'kind']) === undefined) c.error([...at, 'kind'], 'is required (Service)');
    const name = asString(c, t.name, [...at, 'name']);
    if (name === undefined) c.error([...at, 'name'], 'is required');
    const section = asString(c, t.sectionName, [...at, 'sectionName']) ?? '';
    // The CRD's rules: the same target twice needs a sectionName on both, and different ones.
    const key = `${String(t.group)}/${String(t.kind)}/${name ?? ''}`;
    const twice = seen.get(key);
    const shown = `${t.group ? `${String(t.group)}/` : ''}${String(t.kind)} ${name ?? ''}`;
    if (twice !== undefined && (twice || section === '')) c.error([...at, 'sectionName'], `${shown} is already a target; to name it again, give every entry for it a different sectionName`);
    seen.set(key, section === '' || (twice ?? false));
  });
  const v = asObj(c, spec.validation, ['spec', 'validation']);
  if (!v) {
    c.error(['spec', 'validation'], 'is required');
  } else {
    const at = ['spec', 'validation'];
    knownFields(c, v, at, ['caCertificateRefs', 'wellKnownCACertificates', 'hostname', 'subjectAltNames']);
    if (!isSet(v.hostname)) c.error([...at, 'hostname'], 'is required (the SNI sent to the backend, and the name its certificate must carry)');
    else checkHostname(c, v.hostname, [...at, 'hostname'], false);
    const refs = asList(c, v.caCertificateRefs, [...at, 'caCertificateRefs']) ?? [];
    if (refs.length > 8) c.error([...at, 'caCertificateRefs'], 'may hold at most 8 references');
    eachObj(c, v.caCertificateRefs, [...at, 'caCertificateRefs'], (ref, rat) => {
      knownFields(c, ref, rat, ['group', 'kind', 'name']);
      if (asString(c, ref.group, [...rat, 'group']) === undefined) c.error([...rat, 'group'], 'is required ("" for a ConfigMap)');
      if (asString(c, ref.kind, [...rat, 'kind']) === undefined) c.error([...rat, 'kind'], 'is required (ConfigMap)');
      if (asString(c, ref.name, [...rat, 'name']) === undefined) c.error([...rat, 'name'], 'is required');
    });
    // The enum is the CRD's; a value it allows that meshgate did not know would be Accepted False (Invalid).
    const wellKnown = isSet(v.wellKnownCACertificates) && v.wellKnownCACertificates !== '' ? asEnum(c, v.wellKnownCACertificates, [...at, 'wellKnownCACertificates'], ['System']) : undefined;
    if (refs.length > 0 && wellKnown) c.error([...at, 'wellKnownCACertificates'], 'must not be set together with caCertificateRefs');
    if (refs.length === 0 && !isSet(v.wellKnownCACertificates)) c.error([...at, 'caCertificateRefs'], 'or wellKnownCACertificates: System is required: the CA the backend certificate must chain to');
    const sans = asList(c, v.subjectAltNames, [...at, 'subjectAltNames']) ?? [];
    if (sans.length > 5) c.error([...at, 'subjectAltNames'], 'may hold at most 5 names');
    eachObj(c, v.subjectAltNames, [...at, 'subjectAltNames'], (s, sat) => {
      knownFields(c, s, sat, ['type', 'hostname', 'uri']);
      const type = asEnum(c, s.type, [...sat, 'type'], ['Hostname', 'URI']);
      if (isSet(s.hostname)) asString(c, s.hostname, [...sat, 'hostname']);
      if (isSet(s.uri)) asString(c, s.uri, [...sat, 'uri']);
      if (!type && !isSet(s.type)) c.error([...sat, 'type'], 'is required (Hostname or URI)');
      if (type === 'Hostname') {
        if (!isSet(s.hostname) || s.hostname === '') c.error([...sat, 'hostname'], 'is required with type Hostname');
        else if (typeof s.hostname === 'string') checkHostname(c, s.hostname, [...sat, 'hostname'], true);
        if (isSet(s.uri) && s.uri !== '') c.error([...sat, 'uri'], 'goes with type URI, not Hostname');
      } else if (type === 'URI') {
        const uri = typeof s.uri === 'string' && s.uri !== '' ? s.uri : undefined;
        if (uri === undefined) {
          if (!isSet(s.uri) || s.uri === '') c.error([...sat, 'uri'], 'is required with type URI');
        }
        else if (!URI.test(uri)) c.error([...sat, 'uri'], `${JSON.stringify(uri)} is not an absolute URI (scheme:rest, such as spiffe://cluster.local/ns/default/sa/api)`);
        if (isSet(s.hostname) && s.hostname !== '') c.error([...sat, 'hostname'], 'goes with type Hostname, not URI');
      }
    });
  }
  const options = asObj(c, spec.options, ['spec', 'options']);
  if (options) {
    if (Object.keys(options).length > 16) c.error(['spec', 'options'], 'may hold at most 16 options');
    for (const [k, val] of Object.entries(options)) {
      if (asString(c, val, ['spec', 'options', k]) === undefined) continue;
      // Implementation-specific and optional: Istio reads none; saying so beats silently ignoring them.
      c.warn(['spec', 'options', k], `option ${k} is not read by meshgate (nor by Istio); it has no effect`);
    }
  }
}
