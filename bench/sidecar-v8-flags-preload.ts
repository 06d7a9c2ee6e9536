// Loaded into a benchmark's sidecar with `--import` (sidecar-ab.ts): leaves out of the V8 flags the
// `sidecar` command sets on itself those named in SIDECAR_AB_DROP_FLAGS (space-separated prefixes),
// so that one build can be measured with and without each flag. The command takes
// setFlagsFromString from node:v8 by name; the builtin's export is replaced before it loads.

import { createRequire, syncBuiltinESMExports } from 'node:module';

const v8 = createRequire(import.meta.url)('node:v8') as typeof import('node:v8');
const drop = (process.env.SIDECAR_AB_DROP_FLAGS ?? '').split(' ').filter(Boolean);
const setFlags = v8.setFlagsFromString;
v8.setFlagsFromString = (flags: string) => setFlags(flags.split(' ').filter((f) => !drop.some((d) => f.startsWith(d))).join(' '));
syncBuiltinESMExports();
