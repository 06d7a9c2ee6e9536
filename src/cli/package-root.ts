// The folder this package is installed in (where package.json and gateway-config/ are), found from
// the running file upward: the CLI runs from dist/src/cli/ after tsc, and the sidecar from
// dist/sidecar/ when it is the bundled file (scripts/bundle-sidecar.mjs), so no fixed number of `..`.

import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function findPackageRoot(): string {
  const start = dirname(fileURLToPath(import.meta.url));
  for (let dir = start; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    if (dirname(dir) === dir) return join(start, '..', '..', '..');
  }
}

/** The package's root folder, with a trailing separator. */
export const PACKAGE_ROOT = join(findPackageRoot(), '/');
