// Validation of cert-manager.io/v1 Issuer, ClusterIssuer and Certificate, as far as the gateway's
// own ACME client uses them. A cluster's cert-manager manifests should load unchanged: fields
// cert-manager has but meshgate does not act on are warnings, never errors; what would make
// issuance impossible (no HTTP-01 solver, a wildcard name, a non-ACME issuer) is said here, at the
// field, rather than later as a failed order.

import type { FieldPath } from '../model/resource.js';
import { CERT_MANAGER_GROUP, ECDSA_SIZES, RSA_SIZES } from '../model/cert-manager.js';
import {
  Checker, asBool, asEnum, asInt, asObj, asString, checkDuration, describe, eachObj, hostProblem, isDnsSubdomain,
  isSet, knownFields, stringList, type Obj,
} from './validate-common.js';

/** Issuer types cert-manager has besides ACME; meshgate only speaks ACME. */
const OTHER_ISSUER_TYPES = ['ca', 'selfSigned', 'vault', 'venafi'];
const ACME_FIELDS = ['server', 'email', 'privateKeySecretRef', 'solvers', 'skipTLSVerify', 'caBundle', 'preferredChain'];
const ACME_UNUSED = ['externalAccountBinding', 'disableAccountKeyGeneration', 'enableDurationFeature', 'profile'];

const CERTIFICATE_FIELDS = ['secretName', 'dnsNames', 'commonName', 'issuerRef', 'duration', 'renewBefore', 'privateKey'];
/** Certificate fields that shape what cert-manager writes; the ACME certificate meshgate obtains ignores them. */
const CERTIFICATE_UNUSED = [
  'secretTemplate', 'ipAddresses', 'uris', 'emailAddresses', 'otherNames', 'subject', 'literalSubject', 'isCA', 'usages',
  'keystores', 'additionalOutputFormats', 'nameConstraints', 'signatureAlgorithm', 'revisionHistoryLimit',
  'encodeUsagesInRequest', 'renewBeforePercentage',
];

/** Older releases kept ACME account keys in certs/acme/; the gateway moves them out on first use, so no credential may take it. */
export const RESERVED_SECRET_NAME = 'acme';

export function validateIssuer(c: Checker, spec: Obj): void {
  checkName(c);
  knownFields(c, spec, ['spec'], ['acme', ...OTHER_ISSUER_TYPES]);
  const acme = asObj(c, spec.acme, ['spec', 'acme']);
  if (!acme) {
    const other = OTHER_ISSUER_TYPES.find((t) => isSet(spec[t]));
    if (other) c.warn(['spec', other], `meshgate obtains certificates only from ACME issuers; Certificates that use this ${other} issuer are not issued`);
    else if (!isSet(spec.acme)) c.error(['spec', 'acme'], 'an issuer needs an acme block (server, email, privateKeySecretRef, solvers)');
    return;
  }
  validateAcme(c, acme, ['spec', 'acme']);
}

function validateAcme(c: Checker, acme: Obj, at: FieldPath): void {
  knownFields(c, acme, at, [...ACME_FIELDS, ...ACME_UNUSED]);
  for (const f of ACME_UNUSED) if (isSet(acme[f])) c.warn([...at, f], 'not supported by meshgate; ignored');

  const server = asString(c, acme.server, [...at, 'server']);
  if (server === undefined) {
    if (!isSet(acme.server)) c.error([...at, 'server'], 'the ACME directory URL is required, e.g. https://acme-v02.api.letsencrypt.org/directory');
  } else {
    let url: URL | undefined;
    try {
      url = new URL(server);
    } catch {
      c.error([...at, 'server'], `${JSON.stringify(server)} is not a URL`);
    }
    // RFC 8555 §6.1: ACME runs over HTTPS only.
    if (url && url.protocol !== 'https:') c.error([...at, 'server'], `the ACME directory must be an https:// URL, not ${url.protocol}//`);
  }

  const email = asString(c, acme.email, [...at, 'email']);
  if (email !== undefined && email !== '' && !/^[^@\s]+@[^@\s]+$/.test(email)) c.error([...at, 'email'], `${JSON.stringify(email)} is not an e-mail address`);

  const keyRef = asObj(c, acme.privateKeySecretRef, [...at, 'privateKeySecretRef']);
  if (!keyRef) {
    if (!isSet(acme.privateKeySecretRef)) c.error([...at, 'privateKeySecretRef'], 'privateKeySecretRef.name is required (the Secret holding the ACME account key: certs/<name>/tls.key in file mode)');
  } else {
    knownFields(c, keyRef, [...at, 'privateKeySecretRef'], ['name', 'key']);
    const name = asString(c, keyRef.name, [...at, 'privateKeySecretRef', 'name']);
    if (name === undefined) c.error([...at, 'privateKeySecretRef', 'name'], 'is required');
    else if (!isDnsSubdomain(name)) c.error([...at, 'privateKeySecretRef', 'name'], `${JSON.stringify(name)} is not a valid Secret name (a-z, 0-9, '-' and '.')`);
    // In file mode the key is a file name inside certs/<name>/, as a Secret's data key is.
    const key = asString(c, keyRef.key, [...at, 'privateKeySecretRef', 'key']);
    if (key !== undefined && key !== '' && (!/^[-._a-zA-Z0-9]+$/.test(key) || key === '.' || key === '..')) {
      c.error([...at, 'privateKeySecretRef', 'key'], `${JSON.stringify(key)} is not a valid Secret key (a-z, A-Z, 0-9, '-', '_' and '.')`);
    }
  }

  validateSolvers(c, acme.solvers, [...at, 'solvers']);
  asBool(c, acme.skipTLSVerify, [...at, 'skipTLSVerify']);
  asString(c, acme.preferredChain, [...at, 'preferredChain']);
  const bundle = asString(c, acme.caBundle, [...at, 'caBundle']);
  if (bundle !== undefined && !Buffer.from(bundle, 'base64').toString('utf8').includes('-----BEGIN CERTIFICATE-----')) {
    c.error([...at, 'caBundle'], 'must be base64-encoded PEM certificates');
  }
}

function validateSolvers(c: Checker, v: unknown, at: FieldPath): void {
  let http01 = 0;
  eachObj(c, v, at, (solver, sat) => {
    knownFields(c, solver, sat, ['http01', 'dns01', 'selector']);
    asObj(c, solver.selector, [...sat, 'selector']);
    if (isSet(solver.dns01)) c.warn([...sat, 'dns01'], 'meshgate answers HTTP-01 challenges only; this DNS-01 solver is ignored');
    const h = asObj(c, solver.http01, [...sat, 'http01']);
    if (h) {
      http01++;
      // The gateway answers the challenge itself, so how cert-manager would route it needs no checking.
      knownFields(c, h, [...sat, 'http01'], ['ingress', 'gatewayHTTPRoute']);
    } else if (isSet(solver.http01)) {
      // asObj reported it
    } else if (solver.http01 === null) {
      http01++; // `http01:` with nothing after it: cert-manager's defaults
    } else if (!isSet(solver.dns01)) {
      c.error(sat, 'a solver needs http01');
    }
  });
  if (http01 === 0) c.error(at, 'meshgate answers HTTP-01 challenges only: add a solver with http01 (e.g. `- http01: {ingress: {}}`)');
}

export function validateCertificate(c: Checker, spec: Obj): void {
  checkName(c);
  knownFields(c, spec, ['spec'], [...CERTIFICATE_FIELDS, ...CERTIFICATE_UNUSED]);
  for (const f of CERTIFICATE_UNUSED) if (isSet(spec[f])) c.warn(['spec', f], 'a cert-manager field meshgate does not use for ACME certificates; ignored');

  const secretName = asString(c, spec.secretName, ['spec', 'secretName']);
  if (secretName === undefined) {
    if (!isSet(spec.secretName)) c.error(['spec', 'secretName'], 'is required: it is the credentialName Gateway servers use');
  } else if (!isDnsSubdomain(secretName)) {
    c.error(['spec', 'secretName'], `${JSON.stringify(secretName)} is not a valid Secret name (a-z, 0-9, '-' and '.')`);
  } else if (secretName === RESERVED_SECRET_NAME) {
    c.error(['spec', 'secretName'], `"${RESERVED_SECRET_NAME}" is reserved: certs/${RESERVED_SECRET_NAME}/ held ACME account keys before privateKeySecretRef did`);
  }

  const names = validateDnsNames(c, spec.dnsNames);
  const commonName = asString(c, spec.commonName, ['spec', 'commonName']);
  if (commonName !== undefined) {
    if (commonName.length > 64) c.error(['spec', 'commonName'], 'must be at most 64 characters');
    else if (names.length > 0 && !names.includes(commonName)) c.error(['spec', 'commonName'], `${JSON.stringify(commonName)} must also be listed in dnsNames (ACME servers issue only names they validated)`);
  }

  validateIssuerRef(c, spec.issuerRef, ['spec', 'issuerRef']);
  const duration = checkDuration(c, spec.duration, ['spec', 'duration']);
  const renewBefore = checkDuration(c, spec.renewBefore, ['spec', 'renewBefore']);
  if (duration !== undefined && renewBefore !== undefined && renewBefore >= duration) {
    c.error(['spec', 'renewBefore'], 'must be shorter than duration');
  }
  validatePrivateKey(c, spec.privateKey, ['spec', 'privateKey']);
}

function validateDnsNames(c: Checker, v: unknown): string[] {
  const at = ['spec', 'dnsNames'];
  if (!isSet(v) || (Array.isArray(v) && v.length === 0)) {
    c.error(at, 'a Certificate needs at least one DNS name');
    return [];
  }
  const names: string[] = [];
  for (const { value, at: itemAt } of stringList(c, v, at)) {
    const problem = hostProblem(value, true);
    if (problem) {
      c.error(itemAt, problem);
      continue;
    }
    if (value.includes('*')) {
      c.error(itemAt, `${JSON.stringify(value)}: HTTP-01 cannot prove control of a wildcard name, and meshgate answers HTTP-01 only; list the names you serve instead`);
      continue;
    }
    if (names.includes(value)) c.warn(itemAt, `${JSON.stringify(value)} is listed twice`);
    else names.push(value);
  }
  return names;
}

function validateIssuerRef(c: Checker, v: unknown, at: FieldPath): void {
  const ref = asObj(c, v, at);
  if (!ref) {
    if (!isSet(v)) c.error(at, 'issuerRef (name, and kind Issuer or ClusterIssuer) is required');
    return;
  }
  knownFields(c, ref, at, ['name', 'kind', 'group']);
  const name = asString(c, ref.name, [...at, 'name']);
  if (name === undefined) c.error([...at, 'name'], 'is required');
  else if (!isDnsSubdomain(name)) c.error([...at, 'name'], `${JSON.stringify(name)} is not a valid issuer name`);
  asEnum(c, ref.kind, [...at, 'kind'], ['Issuer', 'ClusterIssuer'] as const);
  const group = asString(c, ref.group, [...at, 'group']);
  if (group !== undefined && group !== '' && group !== CERT_MANAGER_GROUP) {
    c.error([...at, 'group'], `external issuers (${group}) are not supported; meshgate issues from ${CERT_MANAGER_GROUP} ACME issuers only`);
  }
}

function validatePrivateKey(c: Checker, v: unknown, at: FieldPath): void {
  const key = asObj(c, v, at);
  if (!key) return;
  knownFields(c, key, at, ['algorithm', 'size', 'rotationPolicy', 'encoding']);
  const algorithm = asEnum(c, key.algorithm, [...at, 'algorithm'], ['RSA', 'ECDSA'] as const);
  const size = asInt(c, key.size, [...at, 'size']);
  const allowed = (algorithm ?? 'RSA') === 'RSA' ? RSA_SIZES : ECDSA_SIZES;
  if (size !== undefined && !allowed.includes(size)) c.error([...at, 'size'], `${size} is not a ${algorithm ?? 'RSA'} key size; use one of ${allowed.join(', ')}`);
  if (isSet(key.rotationPolicy) && key.rotationPolicy !== 'Always') {
    c.warn([...at, 'rotationPolicy'], `meshgate makes a new key at every issuance (rotationPolicy Always), not ${describe(key.rotationPolicy)}`);
  }
  asEnum(c, key.encoding, [...at, 'encoding'], ['PKCS1', 'PKCS8'] as const);
}

/** Issuers and Certificates are named like any Kubernetes object. */
function checkName(c: Checker): void {
  const { name } = c.resource.metadata;
  if (!isDnsSubdomain(name)) c.error(['metadata', 'name'], `name ${JSON.stringify(name)} may use only a-z, 0-9, '-' and '.'`);
}
