// `meshgate analyze [DIR]`: the cross-resource checks of src/core/analyze/ (Istio's analyzer codes)
// plus every validation problem, on a folder or on what the Kubernetes API holds; printed as text,
// JSON or YAML; exit 1 when a finding reaches --failure-threshold.

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from '../core/telemetry/pino.js';
import { stringify } from 'yaml';
import { analyze, asSchemaFindings, atLeast, isSuppressed, parseSuppression, type Suppression } from '../core/analyze/run.js';
import { emptyConfigFindings } from '../core/analyze/empty-config.js';
import { gatewayApiStatusFindings } from '../core/analyze/gateway-api-status.js';
import { configFileNames, loadConfigDir, type LoadResult } from '../core/config/load.js';
import { formatProblem, type Problem, type Severity } from '../core/config/problem.js';
import { validateAll } from '../core/config/validate.js';
import { kubeSource, readableConfigDir, sourceChoice } from './config-source.js';
import { PACKAGED_CONFIG } from './default-config.js';
import { UsageError } from './main.js';
import { parse, gatewayLabels } from './options.js';
import { plural } from './plural.js';
import { DEFAULT_GATEWAY_LABELS_TEXT } from '../core/model/gateway-labels.js';

export const ANALYZE_HELP = `usage: meshgate analyze [DIR] [options]

Checks a config folder (default: the gateway-config/ shipped with meshgate) or the cluster for
mistakes that each resource alone does not show: hosts, subsets, gateways, credentials and selectors
that point at nothing (IST0101), conflicting VirtualServices (IST0109) and Gateways (IST0145), rules
that can never match (IST0130, IST0131), hosts a Gateway does not serve (IST0132), and more; every
validation problem is reported too (IST0106 errors, IST0133 warnings). Codes and names are Istio's;
meshgate's own are MG…, among them an empty config file, folder, or a config with no routes.

  --config DIR                 the folder to analyze (or give it as DIR)
  --config-source kubernetes   analyze what the Kubernetes API holds (with --kubeconfig FILE,
                               --watch-namespaces a,b)
  -o, --output FORMAT          text (default), json or yaml
  --failure-threshold LEVEL    exit 1 when a finding is at least this severe: error (default),
                               warning or info
  --output-threshold LEVEL     print findings at least this severe (default info)
  --suppress CODE=KIND/NAME    leave out a finding, e.g. IST0132=VirtualService/reviews or
                               'IST0101=VirtualService default/*'; repeat for more
  --labels k=v,...             the gateway's labels that Gateway selectors must match
                               (default ${DEFAULT_GATEWAY_LABELS_TEXT})
  --certs DIR                  also check that each credentialName has a folder DIR/<name>/
                               (in a cluster, Secrets are checked without this)
  --allow-unknown-fields       unknown fields are warnings, not errors`;

const LEVELS: readonly Severity[] = ['error', 'warning', 'info'];

export async function runAnalyze(argv: string[]): Promise<number> {
  const { values, positionals } = parse(
    argv,
    {
      config: { type: 'string' },
      'config-source': { type: 'string' },
      kubeconfig: { type: 'string' },
      'watch-namespaces': { type: 'string' },
      output: { type: 'string', short: 'o' },
      'failure-threshold': { type: 'string' },
      'output-threshold': { type: 'string' },
      suppress: { type: 'string', multiple: true },
      labels: { type: 'string' },
      certs: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    true,
  );
  if (values.help) {
    console.log(ANALYZE_HELP);
    return 0;
  }
  const format = values.output ?? 'text';
  if (!['text', 'json', 'yaml'].includes(format)) throw new UsageError(`--output: '${format}' is not text, json or yaml`);
  const failAt = level(values['failure-threshold'] ?? 'error', '--failure-threshold');
  const showAt = level(values['output-threshold'] ?? 'info', '--output-threshold');
  const suppressions: Suppression[] = (values.suppress ?? []).map((s) => {
    const parsed = parseSuppression(s);
    if (!parsed) throw new UsageError(`--suppress: '${s}' is not CODE=KIND/NAME (e.g. IST0101=VirtualService/reviews)`);
    return parsed;
  });

  let loaded: LoadResult;
  let source: string;
  let missing: Problem[] = [];
  const kube = values['config-source'] !== undefined;
  if (kube) {
    const choice = sourceChoice({ 'config-source': values['config-source'], kubeconfig: values.kubeconfig, 'watch-namespaces': values['watch-namespaces'] });
    if (!('kubeconfig' in choice)) throw new UsageError('--config-source kubernetes is the only other source');
    const k = await kubeSource(choice, pino({ level: 'silent' }));
    loaded = await new Promise<LoadResult>((resolve, reject) => {
      k.start((u) => (u.error ? reject(u.error) : resolve(u))).catch(reject);
    }).finally(() => k.destroy());
    source = 'the cluster';
  } else {
    const dir = positionals[0] ?? values.config ?? PACKAGED_CONFIG;
    const readable = readableConfigDir(dir);
    loaded = await loadConfigDir(readable);
    missing = emptyConfigFindings(dir, (await configFileNames(readable)).map((n) => join(readable, n)), loaded);
    source = dir;
  }

  const { valid, problems: validation } = validateAll(loaded.resources);
  const certsDir = values.certs;
  const secrets = new Set(loaded.resources.filter((r) => r.kind === 'Secret').map((r) => `${r.metadata.namespace}/${r.metadata.name}`));
  const credentialExists = kube ? (ns: string, name: string) => secrets.has(`${ns}/${name}`) : certsDir !== undefined ? (ns: string, name: string) => secrets.has(`${ns}/${name}`) || existsSync(join(certsDir, name)) : undefined;
  const findings = [...analyze(valid, { gatewayLabels: [gatewayLabels(values.labels)], ...(credentialExists ? { credentialExists } : {}) }), ...gatewayApiStatusFindings(valid)];
  const all = [...asSchemaFindings([...loaded.problems, ...validation]), ...missing, ...findings]
    .filter((p) => !isSuppressed(p, suppressions))
    .sort((a, b) => (a.file === b.file ? a.line - b.line : a.file < b.file ? -1 : 1));
  const shown = all.filter((p) => atLeast(p, showAt));

  if (format === 'json') console.log(JSON.stringify(shown.map(asRecord), null, 2));
  else if (format === 'yaml') process.stdout.write(shown.length > 0 ? stringify(shown.map(asRecord)) : '[]\n');
  else if (shown.length === 0) console.log(`✔ No validation issues found when analyzing ${source} (${loaded.resources.length} resources).`);
  else {
    for (const p of shown) console.log(formatProblem(p));
    const count = (s: Severity) => all.filter((p) => p.severity === s).length;
    console.log(`${plural(loaded.resources.length, 'resource')} analyzed: ${plural(count('error'), 'error')}, ${plural(count('warning'), 'warning')}, ${count('info')} info`);
  }
  return all.some((p) => atLeast(p, failAt)) ? 1 : 0;
}

function level(text: string, flag: string): Severity {
  const l = text.toLowerCase() as Severity;
  if (!LEVELS.includes(l)) throw new UsageError(`${flag}: '${text}' is not error, warning or info`);
  return l;
}

/** One finding for -o json|yaml: Istio's code, the level, where, and the message. */
function asRecord(p: Problem): Record<string, unknown> {
  return { code: p.code ?? null, level: p.severity, resource: p.resource || null, origin: p.file ? (p.line > 0 ? `${p.file}:${p.line}` : p.file) : null, field: p.field || null, message: p.message };
}
