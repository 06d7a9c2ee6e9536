// Writes docs/reference/fields.md: every field of the Istio kinds meshgate reads (the list in
// test/fixtures/schema/istio-fields.txt, from Istio's v1 schemas), its type and range, and what
// meshgate says when the field is set: nothing (it behaves as Istio documents), or the warning that
// names the difference. Generated from the validators themselves, so it cannot drift:
// `npm run build && node scripts/fields-reference.mjs`; test/fields-reference.test.ts checks the page.
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const ISTIO_DOCS = {
  Gateway: 'networking/gateway/',
  VirtualService: 'networking/virtual-service/',
  DestinationRule: 'networking/destination-rule/',
  ServiceEntry: 'networking/service-entry/',
  WorkloadEntry: 'networking/workload-entry/',
  PeerAuthentication: 'security/peer_authentication/',
  AuthorizationPolicy: 'security/authorization-policy/',
  RequestAuthentication: 'security/request_authentication/',
  Telemetry: 'telemetry/',
};
// Kubernetes' own kinds that meshgate reads as Istio does, with Kubernetes' reference.
const KUBERNETES_DOCS = {
  Ingress: 'https://kubernetes.io/docs/reference/kubernetes-api/service-resources/ingress-v1/',
  IngressClass: 'https://kubernetes.io/docs/reference/kubernetes-api/service-resources/ingress-class-v1/',
};
// Gateway API kinds whose fields are listed here too (the others are in docs/gateway-api.md).
const GATEWAY_API_DOCS = {
  BackendTLSPolicy: 'https://gateway-api.sigs.k8s.io/reference/spec/#backendtlspolicy',
};
// Warnings that state a difference from Istio (not supported, deprecated, ignored) …
const DIFFERENCE = /meshgate|not supported|not implemented|deprecated|not read|ignored|not evaluated/;
// … and not those that only say the one-field sample document is incomplete.
const CONTEXT = /OpenID discovery|tls\.mode defaults|allows no origin|has no percentage|has no httpStatus|start with "\/"|case-sensitively|meant for MESH_INTERNAL|needs outlierDetection|only when outlierDetection/;
// The traffic policy repeats under each subset and each port; it is listed once.
const REPEATED = /^(subsets\.-\.trafficPolicy\.|trafficPolicy\.portLevelSettings\.-\.)/;

export async function fieldsReference() {
  const { problems, readFields, sample, fieldName } = await import('../dist/test/helpers/istio-fields.js');
  const fields = readFields();
  const parts = [
    '# Field reference',
    '',
    'Every field of the Istio kinds meshgate reads, as Istio\'s v1 schemas declare it, and of the Kubernetes',
    'Ingress kinds it serves as Istio does, and of the Gateway API\'s BackendTLSPolicy. A field means what',
    'the reference for its kind says (linked under each heading); the **meshgate** column says where',
    'meshgate differs: it is the warning `meshgate validate` prints when the field is set (empty: no',
    'difference). Types, enums, ranges and the schema\'s limits (required keys, one-of groups, lengths and',
    'counts) are checked as Istio\'s schema and webhook check them: a value',
    'Istio refuses is an error, a value Istio accepts never is. The same fields under',
    '`subsets[].trafficPolicy` and `trafficPolicy.portLevelSettings[]` are listed once, under `trafficPolicy`.',
    '`[]` is an item of a list, `{}` a value of a map. This page is generated from the validators',
    '(`scripts/fields-reference.mjs`), and a test keeps it so.',
    '',
  ];
  for (const kind of [...new Set(fields.map((f) => f.kind))]) {
    const own = fields.filter((f) => f.kind === kind && !REPEATED.test(f.path.join('.')));
    const reference = KUBERNETES_DOCS[kind]
      ? `Kubernetes: <${KUBERNETES_DOCS[kind]}>`
      : GATEWAY_API_DOCS[kind]
        ? `Gateway API: <${GATEWAY_API_DOCS[kind]}>`
        : `Istio: <https://istio.io/latest/docs/reference/config/${ISTIO_DOCS[kind]}>`;
    parts.push(`## ${kind}`, '', `${reference} (\`${own[0].apiVersion}\`)`, '', '| field | type | meshgate |', '|---|---|---|');
    for (const f of own) {
      const at = fieldName(f.path);
      const notes = [...new Set(problems(f, sample(f)).filter((p) => p.severity === 'warning' && (p.field === at || p.field.startsWith(`${at}.`) || at.startsWith(`${p.field}.`) || at.startsWith(`${p.field}[`)) && DIFFERENCE.test(p.message) && !CONTEXT.test(p.message)).map((p) => p.message))];
      const type = [f.type, f.enumValues ? `one of ${f.enumValues.map((e) => `\`${e}\``).join(', ')}` : '', f.duration ? 'duration (≥ 1ms)' : '', range(f), limits(f)].filter(Boolean).join('; ');
      const shown = f.path.map((p) => (p === '-' ? '[]' : p === '*' ? '{}' : p)).join('.').replaceAll('.[]', '[]').replaceAll('.{}', '{}');
      parts.push(`| \`${shown}\` | ${type} | ${notes.join(' ').replaceAll('|', '\\|')} |`);
    }
    parts.push('');
  }
  parts.push('[Docs index](../README.md)', '');
  return parts.join('\n');
}

/** The schema's structural limits, as the API server (and meshgate) enforce them. */
function limits(f) {
  return [
    f.required ? `requires ${f.required.map((k) => `\`${k}\``).join(', ')}` : '',
    f.oneOf ? `at most one of ${f.oneOf.map((k) => `\`${k}\``).join(', ')}` : '',
    f.minLength === 1 ? 'not empty' : '',
    f.maxLength !== undefined ? `≤ ${f.maxLength} characters` : '',
    f.minItems === 1 ? 'not empty' : '',
    f.maxItems !== undefined ? `≤ ${f.maxItems} items` : '',
    f.maxProperties !== undefined ? `≤ ${f.maxProperties} entries` : '',
  ].filter(Boolean).join('; ');
}

function range(f) {
  const wide = (n) => n === 4294967295 || n === 2147483647;
  if (f.min === undefined && f.max === undefined) return '';
  if (f.max !== undefined && wide(f.max)) return f.min === 0 ? 'not negative' : '';
  return `${f.min ?? ''}–${f.max ?? ''}`.replace(/^–/, '≤ ').replace(/–$/, ' or more');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) writeFileSync(fileURLToPath(new URL('../docs/reference/fields.md', import.meta.url)), await fieldsReference());
