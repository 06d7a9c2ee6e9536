// node:tls for code a sidecar loads, taken with require() rather than imported as an ES module.
// Node builds its ES module view of a built-in by reading every export once, getters included, and
// tls.rootCertificates is a getter: the first `import … from 'node:tls'` anywhere in a process turned
// Node's ~140 bundled root certificates into PEM strings kept for the process's life, 0.2 MB of a
// sidecar's heap, though a sidecar trusts only its mesh's root (docs/benchmarks.md, ninth round).
// Through require() the getter runs only for code that reads it (the gateway's ACME client). Types
// still come from `import type … from 'node:tls'`, which emits nothing.

import { createRequire } from 'node:module';

const tls = createRequire(import.meta.url)('node:tls') as typeof import('node:tls');

export const { checkServerIdentity, connect, createSecureContext, createServer, Server } = tls;
