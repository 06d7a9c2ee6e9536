// docs/reference/fields.md lists every field of Istio's schemas that meshgate reads, with meshgate's own
// word on it: a field added to the list, or a new warning in a validator, and not to the page (or the
// other way round) fails here. Regenerate with `node scripts/fields-reference.mjs`.

import { it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const ROOT = new URL('../../', import.meta.url);

it('docs/reference/fields.md is what the field list and the validators say', async () => {
  const { fieldsReference } = (await import(fileURLToPath(new URL('scripts/fields-reference.mjs', ROOT)))) as { fieldsReference(): Promise<string> };
  const page = readFileSync(fileURLToPath(new URL('docs/reference/fields.md', ROOT)), 'utf8');
  assert.equal(page, await fieldsReference(), 'run: node scripts/fields-reference.mjs');
});
