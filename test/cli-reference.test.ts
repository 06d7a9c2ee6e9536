// docs/reference/cli.md is the commands' own --help texts: a flag added to a command and not to the
// page (or the other way round) fails here. Regenerate with `node scripts/cli-reference.mjs`.

import { it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const ROOT = new URL('../../', import.meta.url);

it('docs/reference/cli.md is what --help prints', async () => {
  const { cliReference } = (await import(fileURLToPath(new URL('scripts/cli-reference.mjs', ROOT)))) as { cliReference(): string };
  const page = readFileSync(fileURLToPath(new URL('docs/reference/cli.md', ROOT)), 'utf8');
  assert.equal(page, cliReference(), 'run: node scripts/cli-reference.mjs');
});
