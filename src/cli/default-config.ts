// The config folder a command reads when it is given none: the gateway-config/ shipped with this
// package (the demo's), so `meshgate demo`, `routes`, `explain`, `certs` and `analyze` agree.

import { PACKAGE_ROOT } from './package-root.js';

/** The gateway-config/ folder of this package. */
export const PACKAGED_CONFIG = `${PACKAGE_ROOT}gateway-config`;
