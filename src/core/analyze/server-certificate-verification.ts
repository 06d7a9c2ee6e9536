// IST0128 / IST0129 (NoServerCertificateVerification at destination and port level): a
// DestinationRule that originates TLS (SIMPLE or MUTUAL) without verifying the server. meshgate,
// like Istio with certificate verification at the client, checks the server against the system
// roots when caCertificates is empty; so what is reported here is `insecureSkipVerify: true`.

import type { ClientTlsSettings, DestinationRuleSpec } from '../model/istio.js';
import type { FieldPath, Resource } from '../model/resource.js';
import type { Problem } from '../config/problem.js';
import type { AnalysisContext } from './context.js';
import { finding, MESSAGES, type MessageType } from './finding.js';

export function serverCertificateVerification(ctx: AnalysisContext): Problem[] {
  const out: Problem[] = [];
  for (const dr of ctx.destinationRules) {
    const policies: Array<{ tls?: ClientTlsSettings; at: FieldPath; port?: number }> = [];
    const tp = dr.spec.trafficPolicy;
    if (tp) {
      policies.push({ ...(tp.tls ? { tls: tp.tls } : {}), at: ['spec', 'trafficPolicy', 'tls'] });
      (tp.portLevelSettings ?? []).forEach((p, i) => policies.push({ ...(p?.tls ? { tls: p.tls } : {}), at: ['spec', 'trafficPolicy', 'portLevelSettings', i, 'tls'], ...(p?.port?.number ? { port: p.port.number } : {}) }));
    }
    (dr.spec.subsets ?? []).forEach((s, i) => {
      const stp = s?.trafficPolicy;
      if (stp?.tls) policies.push({ tls: stp.tls, at: ['spec', 'subsets', i, 'trafficPolicy', 'tls'] });
    });
    for (const p of policies) check(dr, p.tls, p.at, p.port, out);
  }
  return out;
}

function check(dr: Resource<DestinationRuleSpec>, tls: ClientTlsSettings | undefined, at: FieldPath, port: number | undefined, out: Problem[]): void {
  if (!tls || (tls.mode !== 'SIMPLE' && tls.mode !== 'MUTUAL') || tls.insecureSkipVerify !== true) return;
  const type: MessageType = port === undefined ? MESSAGES.NoServerCertificateVerificationDestinationLevel : MESSAGES.NoServerCertificateVerificationPortLevel;
  const where = port === undefined ? `host ${dr.spec.host}` : `host ${dr.spec.host} port ${port}`;
  out.push(finding(type, dr, [...at, 'insecureSkipVerify'], `TLS mode ${tls.mode} to ${where} does not verify the server's certificate (insecureSkipVerify: true)`, 'remove insecureSkipVerify and set caCertificates (or credentialName) to the CA that signs the server'));
}
