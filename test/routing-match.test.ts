// Unit tables for the gateway route compiler's HTTPMatchRequest fields: uri, headers, query
// parameters, method, scheme and authority. Istio YAML in, lookup result out, no sockets.
// docs/reference/routing.md

import { describe } from 'node:test';
import { cluster } from './helpers/route-table.js';
import { H, runTable, table, to, when } from './helpers/gateway-route-cases.js';

describe('match: uri', () => {
  runTable([
    {
      name: 'uri exact, prefix and regex; regexes must match the whole path; the query is not part of the path',
      yaml: table([
        when({ uri: { exact: '/exact' } }, 'exact'),
        when({ uri: { prefix: '/pre' } }, 'pre'),
        when({ uri: { regex: '/item/\\d+' } }, 'item'),
        when({ uri: { regex: '\\d+$' } }, 'digits'),
      ]),
      rows: [
        { req: { host: H, path: '/exact' }, want: cluster('exact') },
        { req: { host: H, path: '/exact?x=1' }, want: cluster('exact') },
        { req: { host: H, path: '/exact/' }, want: 404 },
        { req: { host: H, path: '/exactly' }, want: 404 },
        { req: { host: H, path: '/Exact' }, want: 404 },
        { req: { host: H, path: '/pre' }, want: cluster('pre') },
        { req: { host: H, path: '/prefix' }, want: cluster('pre') },
        { req: { host: H, path: '/pre/x?y=1' }, want: cluster('pre') },
        { req: { host: H, path: '/Pre' }, want: 404 },
        { req: { host: H, path: '/item/42' }, want: cluster('item') },
        { req: { host: H, path: '/item/42?page=2' }, want: cluster('item') },
        { req: { host: H, path: '/item/42/x' }, want: 404 },
        { req: { host: H, path: '/x/item/42' }, want: 404 },
        { req: { host: H, path: '/abc123' }, want: 404 },
      ],
    },
    {
      name: 'ignoreUriCase applies to exact and prefix, not to regex',
      yaml: table([
        when({ uri: { exact: '/Exact' }, ignoreUriCase: true }, 'exact'),
        when({ uri: { prefix: '/Pre' }, ignoreUriCase: true }, 'pre'),
        when({ uri: { regex: '/Reg[0-9]' }, ignoreUriCase: true }, 'reg'),
      ]),
      rows: [
        { req: { host: H, path: '/exact' }, want: cluster('exact') },
        { req: { host: H, path: '/EXACT' }, want: cluster('exact') },
        { req: { host: H, path: '/pre/x' }, want: cluster('pre') },
        { req: { host: H, path: '/PREFIX' }, want: cluster('pre') },
        { req: { host: H, path: '/Reg1' }, want: cluster('reg') },
        { req: { host: H, path: '/reg1' }, want: 404 },
        { req: { host: H, path: '/REG1' }, want: 404 },
      ],
    },
  ]);
});

describe('match: headers', () => {
  runTable([
    {
      name: 'headers exact, prefix, regex (whole value) and presence {}',
      yaml: table([
        when({ headers: { 'x-exact': { exact: 'yes' } } }, 'exact'),
        when({ headers: { 'x-prefix': { prefix: 'abc' } } }, 'prefix'),
        when({ headers: { 'x-regex': { regex: '\\d+$' } } }, 'regex'),
        when({ headers: { 'x-present': {} } }, 'present'),
      ]),
      rows: [
        { req: { host: H, headers: { 'x-exact': 'yes' } }, want: cluster('exact') },
        { req: { host: H, headers: { 'X-Exact': 'yes' } }, want: cluster('exact') },
        { req: { host: H, headers: { 'x-exact': 'YES' } }, want: 404 },
        { req: { host: H, headers: { 'x-exact': 'yes-no' } }, want: 404 },
        { req: { host: H, headers: { 'x-prefix': 'abcdef' } }, want: cluster('prefix') },
        { req: { host: H, headers: { 'x-prefix': 'xabc' } }, want: 404 },
        { req: { host: H, headers: { 'x-regex': '123' } }, want: cluster('regex') },
        { req: { host: H, headers: { 'x-regex': 'a123' } }, want: 404 },
        { req: { host: H, headers: { 'x-present': 'anything' } }, want: cluster('present') },
        { req: { host: H, headers: { 'x-present': '' } }, want: cluster('present') },
        { req: { host: H }, want: 404 },
      ],
    },
    {
      name: 'withoutHeaders inverts the match and counts a missing header as empty',
      yaml: table([
        when({ uri: { prefix: '/w1' }, withoutHeaders: { 'x-env': { exact: 'prod' } } }, 'not-prod'),
        when({ uri: { prefix: '/w2' }, withoutHeaders: { 'x-debug': {} } }, 'no-debug'),
        when({ uri: { prefix: '/w3' }, withoutHeaders: { 'x-tag': { regex: '.*' } } }, 'no-tag'),
        when({ uri: { prefix: '/w4' }, withoutHeaders: { 'x-tag': { prefix: 'a' } } }, 'not-a'),
      ]),
      rows: [
        { req: { host: H, path: '/w1' }, want: cluster('not-prod') },
        { req: { host: H, path: '/w1', headers: { 'x-env': 'dev' } }, want: cluster('not-prod') },
        { req: { host: H, path: '/w1', headers: { 'x-env': 'prod' } }, want: 404 },
        { req: { host: H, path: '/w2' }, want: cluster('no-debug') },
        { req: { host: H, path: '/w2', headers: { 'x-debug': '1' } }, want: 404 },
        // '' matches `.*`, so the inverted condition fails even without the header.
        { req: { host: H, path: '/w3' }, want: 404 },
        { req: { host: H, path: '/w3', headers: { 'x-tag': 'v' } }, want: 404 },
        { req: { host: H, path: '/w4' }, want: cluster('not-a') },
        { req: { host: H, path: '/w4', headers: { 'x-tag': 'b' } }, want: cluster('not-a') },
        { req: { host: H, path: '/w4', headers: { 'x-tag': 'abc' } }, want: 404 },
      ],
    },
    {
      name: 'regex "*" (not RE2) is a presence match in headers, withoutHeaders and queryParams, as in Istio',
      yaml: table([
        when({ uri: { prefix: '/h' }, headers: { 'x-tag': { regex: '*' } } }, 'has-tag'),
        when({ uri: { prefix: '/w' }, withoutHeaders: { 'x-tag': { regex: '*' } } }, 'no-tag'),
        when({ uri: { prefix: '/q' }, queryParams: { flag: { regex: '*' } } }, 'flag'),
      ]),
      rows: [
        { req: { host: H, path: '/h', headers: { 'x-tag': 'anything' } }, want: cluster('has-tag') },
        { req: { host: H, path: '/h', headers: { 'x-tag': '' } }, want: cluster('has-tag') },
        { req: { host: H, path: '/h' }, want: 404 },
        { req: { host: H, path: '/w' }, want: cluster('no-tag') },
        { req: { host: H, path: '/w', headers: { 'x-tag': 'v' } }, want: 404 },
        { req: { host: H, path: '/q?flag=on' }, want: cluster('flag') },
        { req: { host: H, path: '/q?flag' }, want: cluster('flag') },
        { req: { host: H, path: '/q?other=1' }, want: 404 },
      ],
    },
  ]);
});

describe('match: query parameters, method, scheme, authority', () => {
  runTable([
    {
      name: 'queryParams exact, regex, presence {} and exact "" as presence',
      yaml: table([
        when({ uri: { prefix: '/q1' }, queryParams: { debug: { exact: '' } } }, 'debug'),
        when({ uri: { prefix: '/q2' }, queryParams: { v: { exact: '2' } } }, 'v2'),
        when({ uri: { prefix: '/q3' }, queryParams: { id: { regex: '\\d+$' } } }, 'id'),
        when({ uri: { prefix: '/q4' }, queryParams: { flag: {} } }, 'flag'),
      ]),
      rows: [
        { req: { host: H, path: '/q1?debug' }, want: cluster('debug') },
        { req: { host: H, path: '/q1' }, want: 404 },
        { req: { host: H, path: '/q1?other' }, want: 404 },
        { req: { host: H, path: '/q2?v=2' }, want: cluster('v2') },
        { req: { host: H, path: '/q2', query: { v: '2' } }, want: cluster('v2') },
        { req: { host: H, path: '/q2?v=3' }, want: 404 },
        { req: { host: H, path: '/q2?v=22' }, want: 404 },
        { req: { host: H, path: '/q3?id=123' }, want: cluster('id') },
        { req: { host: H, path: '/q3?id=a123' }, want: 404 },
        { req: { host: H, path: '/q4?flag' }, want: cluster('flag') },
        { req: { host: H, path: '/q4?flag=on' }, want: cluster('flag') },
        { req: { host: H, path: '/q4' }, want: 404 },
      ],
    },
    {
      name: 'method, scheme and authority matches',
      yaml: table([
        when({ uri: { prefix: '/m' }, method: { exact: 'POST' } }, 'post'),
        when({ scheme: { exact: 'https' } }, 'secure'),
        when({ authority: { prefix: 'api.' } }, 'api'),
        when({ authority: { regex: 'admin\\.example\\.com' } }, 'admin'),
      ]),
      rows: [
        { req: { host: H, path: '/m', method: 'POST' }, want: cluster('post') },
        { req: { host: H, path: '/m' }, want: 404 },
        { req: { host: H, scheme: 'https' }, want: cluster('secure') },
        { req: { host: 'api.example.com' }, want: cluster('api') },
        { req: { host: 'api.example.com:8080' }, want: cluster('api') },
        { req: { host: 'admin.example.com' }, want: cluster('admin') },
        { req: { host: 'my.admin.example.com' }, want: 404 },
      ],
    },
    {
      name: 'the first matching route wins; match entries are ORed, conditions inside one are ANDed',
      yaml: table([
        when({ uri: { prefix: '/a' } }, 'first'),
        when({ uri: { prefix: '/a/b' } }, 'second'),
        { match: [{ uri: { exact: '/x' } }, { headers: { 'x-y': { exact: '1' } } }], ...to('either') },
        when({ uri: { prefix: '/get-only' }, method: { exact: 'GET' } }, 'both'),
      ]),
      rows: [
        { req: { host: H, path: '/a/b' }, want: cluster('first') },
        { req: { host: H, path: '/x' }, want: cluster('either') },
        { req: { host: H, path: '/z', headers: { 'x-y': '1' } }, want: cluster('either') },
        { req: { host: H, path: '/z' }, want: 404 },
        { req: { host: H, path: '/get-only' }, want: cluster('both') },
        { req: { host: H, path: '/get-only', method: 'POST' }, want: 404 },
      ],
    },
  ]);
});
