// `meshgate validate DIR`: print every problem with file, line, resource and field; exit 1 when any
// is an error, 0 with warnings only.

import { formatProblem } from '../core/config/problem.js';
import { plural } from './plural.js';
import { parse, gatewayLabels } from './options.js';
import { offlineSnapshot } from './offline-snapshot.js';
import { UsageError } from './main.js';

export async function runValidate(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { config: { type: 'string' }, labels: { type: 'string' }, namespace: { type: 'string' }, help: { type: 'boolean', short: 'h' } }, true);
  if (values.help) {
    console.log(
      [
        'usage: meshgate validate DIR   (or --config DIR)',
        '  checks each resource on its own (schema, ranges, syntax): fast, for editors and CI',
        '  exits 1 when any problem is an error, 0 with warnings only',
        '  --allow-unknown-fields   unknown fields are warnings, not errors',
        'references between resources (hosts, subsets, gateways, selectors) are checked by: meshgate analyze DIR',
      ].join('\n'),
    );
    return 0;
  }
  const dir = positionals[0] ?? values.config;
  if (!dir) throw new UsageError('which folder? meshgate validate DIR');
  const { snapshot, problems } = await offlineSnapshot(dir, gatewayLabels(values.labels), values.namespace ?? 'istio-system');
  for (const p of problems) console.log(formatProblem(p));
  const errors = problems.filter((p) => p.severity === 'error').length;
  const warnings = problems.length - errors;
  console.log(`${plural(snapshot.resources.length, 'resource')} valid, ${plural(errors, 'error')}, ${plural(warnings, 'warning')}`);
  console.log(`references between resources are not checked here; run: meshgate analyze ${dir}`);
  return errors > 0 ? 1 : 0;
}
