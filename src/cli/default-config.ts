// The config folder a command reads when it is given none: the gateway-config/ shipped with this
// package (the demo's), so `meshgate demo`, `routes`, `explain`, `certs` and `analyze` agree.

import { fileURLToPath } from 'node:url';

/** The gateway-config/ folder of this package (dist/src/cli/ → the package root). */
export const PACKAGED_CONFIG = fileURLToPath(new URL('../../../gateway-config', import.meta.url));
