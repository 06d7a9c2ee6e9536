// `meshgate certs --config DIR [--certs certs]`: every certificate the gateway's TLS servers would
// serve, with its names, issuer and expiry, and what is wrong with it (missing files, a key that does
// not match, expired, a server host the certificate does not name). For a credential a cert-manager
// Certificate produces, also its ACME state as the gateway left it in meta.json: owning Certificate
// and Issuer, renewal due, last error and next attempt, and a re-issue the configuration asks for.
// Exit 1 when a server has no usable certificate or its ACME certificate cannot be obtained, so it
// can gate a deploy.

import { join } from 'node:path';
import { plural } from './plural.js';
import { formatPath, formatProblem, type Problem } from '../core/config/problem.js';
import type { ServerConfig } from '../core/routing/types.js';
import { parseCertificates, sansCover } from '../core/tls/credential-check.js';
import { createCredentialStore, type FileCredentialStore } from '../core/tls/credential-store.js';
import type { ServerCredential } from '../core/tls/types.js';
import { readStored, type StoredCertificate } from '../gateway/acme/certificate-files.js';
import { isReal, reissueReason, renewAt } from '../gateway/acme/certificate-facts.js';
import { wantedCertificates, type WantedCertificate } from '../gateway/acme/wanted-certificates.js';
import { parse, gatewayLabels } from './options.js';
import { offlineSnapshot } from './offline-snapshot.js';
import { PACKAGED_CONFIG } from './default-config.js';
import { DEFAULT_GATEWAY_LABELS_TEXT } from '../core/model/gateway-labels.js';

const TERMINATING = new Set(['SIMPLE', 'MUTUAL', 'OPTIONAL_MUTUAL']);
const DAY_MS = 24 * 3600_000;

export async function runCerts(argv: string[], write: (text: string) => void = (t) => void process.stdout.write(t)): Promise<number> {
  const { values, positionals } = parse(
    argv,
    { config: { type: 'string' }, certs: { type: 'string' }, labels: { type: 'string' }, namespace: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    true,
  );
  if (values.help) {
    write(`usage: meshgate certs [--config DIR] [--certs certs] [--labels ${DEFAULT_GATEWAY_LABELS_TEXT}] [--namespace istio-system]\n  exits 1 when a TLS server has no usable certificate or its ACME certificate cannot be obtained\n  --config DIR   default: the gateway-config/ shipped with meshgate (as for meshgate demo)\n`);
    return 0;
  }
  const dir = values.config ?? positionals[0] ?? PACKAGED_CONFIG;
  const { snapshot, problems } = await offlineSnapshot(dir, gatewayLabels(values.labels), values.namespace ?? 'istio-system');

  const servers = [...snapshot.listeners.values()]
    .sort((a, b) => a.port - b.port)
    .flatMap((l) => l.servers.map((s) => ({ port: s.port, server: s })))
    .filter(({ server }) => server.tls && TERMINATING.has(server.tls.mode ?? ''));

  const certsDir = values.certs ?? 'certs';
  const store = createCredentialStore({ certsDir, watch: false });
  const { wanted } = wantedCertificates(snapshot);
  const lines: string[] = [];
  let unusable = 0;
  let failing = 0;
  let warnings = 0;
  try {
    const now = new Date();
    for (const { port, server } of servers) {
      const managed: ManagedCredential[] = [];
      for (const name of credentialNames(server)) {
        const w = wanted.get(name);
        if (w) managed.push({ wanted: w, stored: await readStored(certsDir, name), certsDir });
      }
      const r = reportServer(store, port, server, now, managed, problemsOfServer(problems, server));
      lines.push(...r.lines, '');
      if (!r.usable) unusable++;
      if (r.failing) failing++;
      warnings += r.warnings;
    }
  } finally {
    await store.close();
  }

  const errors = problems.filter((p) => p.severity === 'error');
  if (errors.length > 0) {
    lines.push(`note: the configuration has ${errors.length} error${errors.length === 1 ? '' : 's'}; servers of rejected resources are not listed:`);
    lines.push(...errors.map((p) => `  ${formatProblem(p)}`), '');
  }
  if (servers.length === 0) lines.push('no Gateway server of this gateway terminates TLS');
  else lines.push(`${plural(servers.length, 'TLS server')}, ${unusable} without a usable certificate, ${failing > 0 ? `${failing} failing ACME, ` : ''}${plural(warnings, 'warning')}`);
  write(lines.join('\n') + '\n');
  return unusable > 0 || failing > 0 ? 1 : 0;
}

/** A credential a cert-manager Certificate produces, and what the gateway left on disk for it. */
interface ManagedCredential {
  readonly wanted: WantedCertificate;
  readonly stored: StoredCertificate | undefined;
  readonly certsDir: string;
}

function credentialNames(server: ServerConfig): string[] {
  const tls = server.tls;
  return tls?.credentialName ? [tls.credentialName] : [...(tls?.credentialNames ?? []).slice(0, 2)];
}

/** Warnings the configuration has about this Gateway server (e.g. no port 80 for HTTP-01). */
function problemsOfServer(problems: readonly Problem[], server: ServerConfig): Problem[] {
  const at = formatPath(['spec', 'servers', server.serverIndex]);
  return problems.filter((p) => p.resource === `Gateway ${server.gateway}` && (p.field === at || p.field.startsWith(`${at}.`)));
}

interface ServerReport {
  readonly lines: string[];
  readonly usable: boolean;
  /** An ACME certificate it serves cannot be obtained or renewed. */
  readonly failing: boolean;
  readonly warnings: number;
}

function reportServer(
  store: FileCredentialStore, port: number, server: ServerConfig, now: Date, managed: readonly ManagedCredential[], configProblems: readonly Problem[],
): ServerReport {
  const tls = server.tls!;
  const lines = [`gateway ${server.gateway} server[${server.serverIndex}] port ${port} hosts ${server.hosts.join(', ')}`];
  const sources = store.describe(tls);
  lines.push(row('mode', tls.mode ?? 'PASSTHROUGH'));
  lines.push(...(sources.length > 0 ? sources : ['no certificate configured']).map((s) => row('uses', s)));

  const cred = store.forServer(tls);
  const certs = cred ? [cred, ...(cred.alternates ?? [])] : [];
  const mutual = tls.mode === 'MUTUAL' || tls.mode === 'OPTIONAL_MUTUAL';
  for (const c of certs) lines.push(...describeCertificate(c, now, mutual));

  // Not on disk yet is no problem for an ACME credential: the gateway writes a stand-in when it starts.
  const notYetIssued = new Set(managed.filter((m) => !m.stored).map((m) => m.wanted.secretName));
  const found = store.problemsFor(tls).filter((p) => !notYetIssued.has(p.credential));
  let warnings = 0;
  let failing = false;
  for (const m of managed) {
    const r = describeManaged(m, now);
    lines.push(...r.lines);
    warnings += r.warnings;
    failing ||= r.failing;
  }
  for (const p of configProblems) {
    if (p.severity === 'warning') warnings++;
    lines.push(row(p.severity, p.message));
  }
  for (const p of found) {
    const severity = p.severity ?? 'error';
    if (severity === 'warning') warnings++;
    lines.push(row(severity, `${p.credential}: ${p.message}`));
  }
  if (certs.length > 0) {
    const sans = certs.flatMap((c) => c.sans);
    for (const host of server.hosts.filter((h) => !sansCover(sans, h))) {
      warnings++;
      lines.push(row('warning', `host ${host} is not covered by the certificate's names`));
    }
  }
  if (sources.length === 0 && !cred) lines.push(row('error', `${tls.mode} needs a certificate: credentialName or serverCertificate/privateKey`));
  const pending = !cred && managed.length > 0 && managed.every((m) => !m.stored);
  const status = failing
    ? `ACME FAILING: ${cred ? `serving ${cred.source === 'self-signed' ? 'the self-signed stand-in' : 'the certificate it has'}` : 'no certificate yet'} until an order succeeds`
    : cred
      ? warnings > 0 ? 'serving, with warnings' : 'ok'
      : pending
        ? 'not issued yet: the gateway serves a self-signed stand-in from its start until ACME delivers'
        : 'NO USABLE CERTIFICATE: connections to this server are closed';
  lines.push(row('status', status));
  return { lines, usable: cred !== undefined || pending, failing, warnings };
}

/** The ACME side of one credential: who owns it, when it renews, and whether the last attempt failed. */
function describeManaged({ wanted: w, stored, certsDir }: ManagedCredential, now: Date): { lines: string[]; warnings: number; failing: boolean } {
  const lines = [row('acme', `${w.ref}, ${w.issuer?.ref ?? 'no usable issuer'}${w.issuer ? ` (${w.issuer.acme.server})` : ''}`)];
  if (w.issuer) lines.push(row('account', `${join(certsDir, w.issuer.accountKey.secretName, w.issuer.accountKey.key)} (privateKeySecretRef)`));
  let warnings = 0;
  let failing = false;
  if (w.waiting) {
    failing = true;
    lines.push(row('error', `${w.secretName}: cannot be issued: ${w.waiting}`));
  }
  const meta = stored?.meta;
  // One process orders for all workers and replicas (in a cluster the holder of the ACME Lease): this one wrote what is stored.
  if (meta?.orderer) lines.push(row('orderer', `${meta.orderer} (the gateway process that ordered it and wrote this record)`));
  if (stored && isReal(stored)) {
    lines.push(row('issued', new Date(stored.leaf.validFrom).toISOString()));
    if (meta?.source === 'acme') {
      const due = renewAt(w, stored);
      lines.push(row('renewal', `due ${new Date(due).toISOString()} (${due > now.getTime() ? `in ${span(due - now.getTime())}` : 'now'})`));
    }
    const reason = reissueReason(w, stored);
    if (!meta) {
      warnings++;
      lines.push(row('warning', `${w.secretName}: put there by hand (no meta.json); the gateway replaces it with a certificate from ${w.issuer?.ref ?? 'the issuer'}`));
    } else if (reason) {
      warnings++;
      lines.push(row('warning', `${w.secretName}: pending re-issue: ${reason}`));
    }
  } else if (stored) {
    warnings++;
    lines.push(row('warning', `${w.secretName}: serving a self-signed stand-in (clients will not trust it) until ACME delivers`));
  }
  if (meta?.lastError) {
    failing = true;
    const at = meta.lastErrorAt ? `${meta.lastErrorAt}: ` : '';
    lines.push(row('last error', `${at}${meta.lastError}`));
    if (meta.nextAttemptAt) {
      const next = Date.parse(meta.nextAttemptAt);
      lines.push(row('next try', `${meta.nextAttemptAt} (${next > now.getTime() ? `in ${span(next - now.getTime())}` : `${span(now.getTime() - next)} ago: is the gateway running?`})`));
    }
    lines.push(row('error', `${w.secretName}: ACME ${isReal(stored) ? 'renewal' : 'issuance'} is failing`));
  }
  return { lines, warnings, failing };
}

/** One labelled line of a server's report. */
function row(label: string, text: string): string {
  return `  ${label.padEnd(10)} ${text}`;
}

/** `3 days`, `5 h`, `12 min`, `40 s`: how far away a time is, as a person reads it. */
function span(ms: number): string {
  if (ms >= 2 * DAY_MS) return plural(Math.floor(ms / DAY_MS), 'day');
  if (ms >= 2 * 3600_000) return `${Math.floor(ms / 3600_000)} h`;
  if (ms >= 120_000) return `${Math.floor(ms / 60_000)} min`;
  return `${Math.max(1, Math.round(ms / 1000))} s`;
}

/**
 * A certificate without subjectAltName names its host only in the subject CN. Browsers (Chrome,
 * Firefox, Safari) and Go since 1.15 ignore the CN and refuse it; OpenSSL (so curl and openssl
 * s_client) and Node's checkServerIdentity still fall back to the CN when there is no DNS SAN.
 */
const NO_SAN = '(none: only the subject CN names the host; browsers and Go clients refuse such a certificate, curl/OpenSSL and Node accept it; reissue it with a DNS subjectAltName)';

function describeCertificate(c: ServerCredential, now: Date, mutual: boolean): string[] {
  const left = Math.floor((c.notAfter.getTime() - now.getTime()) / DAY_MS);
  const when = left >= 0 ? `${plural(left, 'day')} left` : `expired ${plural(-left, 'day')} ago`;
  return [
    row('names', c.sans.length > 0 ? c.sans.join(', ') : NO_SAN),
    row('subject', c.subject),
    row('issuer', `${c.issuer}${c.issuer === c.subject ? ' (self-signed)' : ''}`),
    row('not after', `${c.notAfter.toISOString()} (${when})`),
    row('source', c.source),
    ...(mutual && c.caPem !== undefined ? [row('client CA', caSubjects(c.caPem))] : []),
  ];
}

/** The subjects of the CA bundle client certificates are verified against. */
function caSubjects(pem: string): string {
  const parsed = parseCertificates(pem, 'CA bundle');
  return parsed.ok ? parsed.certs.map((c) => c.subject.split('\n').join(', ')).join('; ') : 'unreadable';
}
