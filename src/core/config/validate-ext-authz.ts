// The mesh config's external authorizers: `extensionProviders[].envoyExtAuthzHttp` and
// `.envoyExtAuthzGrpc` (docs/tasks/external-authorization.md). Istio does not refuse a mesh config
// for a broken provider: it keeps the provider, and a CUSTOM policy that names it denies what its
// rules match. So every problem here is a warning that says so, and the ConfigMap is still taken.

import type { FieldPath } from '../model/resource.js';
import { portOf, statusOf } from '../policy/ext-authz-providers.js';
import { asBool, asInt, asObj, asString, checkDuration, isSet, knownFields, stringList, type Checker, type Obj } from './validate-common.js';

const COMMON = ['service', 'port', 'timeout', 'statusOnError', 'failOpen', 'includeRequestBodyInCheck'];
const HTTP_FIELDS = [
  ...COMMON, 'pathPrefix', 'includeRequestHeadersInCheck', 'includeHeadersInCheck', 'includeAdditionalHeadersInCheck',
  'headersToUpstreamOnAllow', 'headersToDownstreamOnDeny', 'headersToDownstreamOnAllow',
];
const HEADER_LISTS = ['includeRequestHeadersInCheck', 'includeHeadersInCheck', 'headersToUpstreamOnAllow', 'headersToDownstreamOnDeny', 'headersToDownstreamOnAllow'];
const BROKEN = 'CUSTOM policies naming this provider deny every request they match';

/** One provider entry of kind envoyExtAuthzHttp or envoyExtAuthzGrpc; `at` is the entry's path. */
export function checkExtAuthzProvider(c: Checker, entry: Obj, at: FieldPath): void {
  const kind = isSet(entry['envoyExtAuthzHttp']) ? 'envoyExtAuthzHttp' : isSet(entry['envoyExtAuthzGrpc']) ? 'envoyExtAuthzGrpc' : undefined;
  if (!kind) return;
  const pat = [...at, kind];
  const spec = asObj(c, entry[kind], pat);
  if (!spec) return;
  const name = typeof entry['name'] === 'string' ? entry['name'] : '';
  if (!/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(name)) c.warn([...at, 'name'], `provider names are lower-case letters, digits and '-' (at most 63), as Istio asks; ${JSON.stringify(name)} may be refused by istiod`);
  knownFields(c, spec, pat, kind === 'envoyExtAuthzHttp' ? HTTP_FIELDS : COMMON);
  const service = asString(c, spec['service'], [...pat, 'service']);
  if (!service) c.warn([...pat, 'service'], `service is required ([<namespace>/]<hostname>); ${BROKEN}`);
  if (portOf(spec['port']) === undefined) c.warn([...pat, 'port'], `port must be 1 to 65535, not ${JSON.stringify(spec['port'] ?? null)}; ${BROKEN}`);
  checkDuration(c, spec['timeout'], [...pat, 'timeout']);
  if (statusOf(spec['statusOnError']) === undefined) c.warn([...pat, 'statusOnError'], `statusOnError is an HTTP status code written as a string ("503"), not ${JSON.stringify(spec['statusOnError'])}; ${BROKEN}`);
  asBool(c, spec['failOpen'], [...pat, 'failOpen']);
  const body = asObj(c, spec['includeRequestBodyInCheck'], [...pat, 'includeRequestBodyInCheck']);
  if (body) {
    const bat = [...pat, 'includeRequestBodyInCheck'];
    knownFields(c, body, bat, ['maxRequestBytes', 'allowPartialMessage', 'packAsBytes']);
    const max = asInt(c, body['maxRequestBytes'], [...bat, 'maxRequestBytes'], 0, 4_294_967_295);
    if (!max) c.warn([...bat, 'maxRequestBytes'], `maxRequestBytes must be set above 0 (Envoy refuses a configuration without it); ${BROKEN}`);
    asBool(c, body['allowPartialMessage'], [...bat, 'allowPartialMessage']);
    asBool(c, body['packAsBytes'], [...bat, 'packAsBytes']);
    if (body['packAsBytes'] === true && kind === 'envoyExtAuthzHttp') c.warn([...bat, 'packAsBytes'], 'packAsBytes only changes what a gRPC provider gets; an HTTP provider gets the body as the check request\'s body either way');
  }
  if (kind === 'envoyExtAuthzGrpc') return;
  const prefix = asString(c, spec['pathPrefix'], [...pat, 'pathPrefix']);
  if (prefix !== undefined && prefix !== '' && !prefix.startsWith('/')) c.warn([...pat, 'pathPrefix'], `pathPrefix must begin with '/'; ${BROKEN}`);
  for (const field of HEADER_LISTS) {
    for (const { value, at: vat } of stringList(c, spec[field], [...pat, field])) {
      if (value === '*') c.warn(vat, `a lone "*" is not supported (use a prefix "x-*" or suffix "*-id" match); ${BROKEN}`);
    }
  }
  if (isSet(spec['includeHeadersInCheck']) && isSet(spec['includeRequestHeadersInCheck'])) {
    c.warn([...pat, 'includeHeadersInCheck'], 'deprecated, and ignored while includeRequestHeadersInCheck is set');
  }
  const added = asObj(c, spec['includeAdditionalHeadersInCheck'], [...pat, 'includeAdditionalHeadersInCheck']);
  for (const [k, v] of Object.entries(added ?? {})) asString(c, v, [...pat, 'includeAdditionalHeadersInCheck', k]);
}
