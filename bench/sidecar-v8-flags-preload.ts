// Loaded into a benchmark's sidecar with `--import` (sidecar-ab.ts): replaces the V8 flags the
// `sidecar` command sets on itself with SIDECAR_AB_V8_FLAGS when that is set, and leaves out of them
// those named in SIDECAR_AB_DROP_FLAGS (space-separated prefixes), so that one build can be measured
// with other flags, or with and without each. The command takes setFlagsFromString from node:v8 by
// name; the builtin's export is replaced before it loads.

import { createRequire, syncBuiltinESMExports } from 'node:module';

const v8 = createRequire(import.meta.url)('node:v8') as typeof import('node:v8');
const drop = (process.env.SIDECAR_AB_DROP_FLAGS ?? '').split(' ').filter(Boolean);
const setFlags = v8.setFlagsFromString;
const instead = process.env.SIDECAR_AB_V8_FLAGS;
v8.setFlagsFromString = (flags: string) => setFlags((instead ?? flags).split(' ').filter((f) => !drop.some((d) => f.startsWith(d))).join(' '));
syncBuiltinESMExports();
