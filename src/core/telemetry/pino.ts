// pino, taken with require() rather than imported as an ES module. pino is CommonJS, and the first ES
// import of a CommonJS package in a process makes Node load its CommonJS export lexer and keep an ES
// module wrapper of the package's exports: about 0.35 MB of a bare Node's RSS with the sidecar's V8
// flags, for nothing pino needs (docs/benchmarks.md, the sidecar's eleventh round). pino was the last
// CommonJS package a proxy imported that way (undici's Pool is required too). Types still come from
// `import type … from 'pino'`, which emits nothing.

import { createRequire } from 'node:module';

export const { pino } = createRequire(import.meta.url)('pino') as typeof import('pino');
