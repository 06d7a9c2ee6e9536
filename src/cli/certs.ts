// `meshgate certs --config DIR [--certs certs]`: every certificate the gateway's TLS servers would
// serve, with its names, issuer and expiry, and what is wrong with it (missing files, a key that does
// not match, expired, a server host the certificate does not name). Exit 1 when a server has no
// usable certificate, so it can gate a deploy.

import { formatProblem } from '../core/config/problem.js';
import type { ServerConfig } from '../core/routing/types.js';
import { parseCertificates, sansCover } from '../core/tls/credential-check.js';
import { createCredentialStore, type FileCredentialStore } from '../core/tls/credential-store.js';
import type { ServerCredential } from '../core/tls/types.js';
import { parse, parseLabels } from './options.js';
import { offlineSnapshot } from './offline-snapshot.js';
import { UsageError } from './main.js';

const TERMINATING = new Set(['SIMPLE', 'MUTUAL', 'OPTIONAL_MUTUAL']);
const DAY_MS = 24 * 3600_000;

export async function runCerts(argv: string[], write: (text: string) => void = (t) => void process.stdout.write(t)): Promise<number> {
  const { values, positionals } = parse(
    argv,
    { config: { type: 'string' }, certs: { type: 'string' }, labels: { type: 'string' }, namespace: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    true,
  );
  if (values.help) {
    write('usage: meshgate certs --config DIR [--certs certs] [--labels istio=ingressgateway] [--namespace istio-system]\n  exits 1 when a TLS server has no usable certificate\n');
    return 0;
  }
  const dir = values.config ?? positionals[0];
  if (!dir) throw new UsageError('--config DIR is required');
  const { snapshot, problems } = await offlineSnapshot(dir, values.labels ? parseLabels(values.labels) : { istio: 'ingressgateway' }, values.namespace ?? 'istio-system');

  const servers = [...snapshot.listeners.values()]
    .sort((a, b) => a.port - b.port)
    .flatMap((l) => l.servers.map((s) => ({ port: s.port, server: s })))
    .filter(({ server }) => server.tls && TERMINATING.has(server.tls.mode ?? ''));

  const store = createCredentialStore({ certsDir: values.certs ?? 'certs', watch: false });
  const lines: string[] = [];
  let unusable = 0;
  let warnings = 0;
  try {
    const now = new Date();
    for (const { port, server } of servers) {
      const r = reportServer(store, port, server, now);
      lines.push(...r.lines, '');
      if (!r.usable) unusable++;
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
  else lines.push(`${plural(servers.length, 'TLS server')}, ${unusable} without a usable certificate, ${plural(warnings, 'warning')}`);
  write(lines.join('\n') + '\n');
  return unusable > 0 ? 1 : 0;
}

function reportServer(store: FileCredentialStore, port: number, server: ServerConfig, now: Date): { lines: string[]; usable: boolean; warnings: number } {
  const tls = server.tls!;
  const lines = [`gateway ${server.gateway} server[${server.serverIndex}] port ${port} hosts ${server.hosts.join(', ')}`];
  const sources = store.describe(tls);
  lines.push(`  ${'mode'.padEnd(10)} ${tls.mode}`);
  lines.push(...(sources.length > 0 ? sources : ['no certificate configured']).map((s) => `  ${'uses'.padEnd(10)} ${s}`));

  const cred = store.forServer(tls);
  const certs = cred ? [cred, ...(cred.alternates ?? [])] : [];
  const mutual = tls.mode === 'MUTUAL' || tls.mode === 'OPTIONAL_MUTUAL';
  for (const c of certs) lines.push(...describeCertificate(c, now, mutual));

  const found = store.problemsFor(tls);
  let warnings = 0;
  for (const p of found) {
    const severity = p.severity ?? 'error';
    if (severity === 'warning') warnings++;
    lines.push(`  ${severity.padEnd(10)} ${p.credential}: ${p.message}`);
  }
  if (certs.length > 0) {
    const sans = certs.flatMap((c) => c.sans);
    for (const host of server.hosts.filter((h) => !sansCover(sans, h))) {
      warnings++;
      lines.push(`  ${'warning'.padEnd(10)} host ${host} is not covered by the certificate's names`);
    }
  }
  if (sources.length === 0 && !cred) lines.push(`  ${'error'.padEnd(10)} ${tls.mode} needs a certificate: credentialName or serverCertificate/privateKey`);
  lines.push(`  ${'status'.padEnd(10)} ${cred ? (warnings > 0 ? 'serving, with warnings' : 'ok') : 'NO USABLE CERTIFICATE: connections to this server are closed'}`);
  return { lines, usable: cred !== undefined, warnings };
}

function describeCertificate(c: ServerCredential, now: Date, mutual: boolean): string[] {
  const left = Math.floor((c.notAfter.getTime() - now.getTime()) / DAY_MS);
  const when = left >= 0 ? `${plural(left, 'day')} left` : `expired ${plural(-left, 'day')} ago`;
  return [
    `  ${'names'.padEnd(10)} ${c.sans.length > 0 ? c.sans.join(', ') : '(none: clients will refuse it)'}`,
    `  ${'subject'.padEnd(10)} ${c.subject}`,
    `  ${'issuer'.padEnd(10)} ${c.issuer}${c.issuer === c.subject ? ' (self-signed)' : ''}`,
    `  ${'not after'.padEnd(10)} ${c.notAfter.toISOString()} (${when})`,
    `  ${'source'.padEnd(10)} ${c.source}`,
    ...(mutual && c.caPem !== undefined ? [`  ${'client CA'.padEnd(10)} ${caSubjects(c.caPem)}`] : []),
  ];
}

/** The subjects of the CA bundle client certificates are verified against. */
function caSubjects(pem: string): string {
  const parsed = parseCertificates(pem, 'CA bundle');
  return parsed.ok ? parsed.certs.map((c) => c.subject.split('\n').join(', ')).join('; ') : 'unreadable';
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}
