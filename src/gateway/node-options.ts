// How the gateway's Node.js runs: NODE_OPTIONS of its Deployment (deploy/gateway.yaml) and of the
// benchmark's gateway, so that the bench measures what a cluster runs. docs/benchmarks.md has the
// measurements.
//
// A gateway at saturation allocates some 24 KB per request, garbage once the request has ended. With
// V8's default young generation (semi-spaces of at most 16 MB) it nevertheless promoted about 2.4 KB
// per request into the old generation, where only a mark-compact frees it: old-generation
// collections on the request path, with their incremental steps and finalization pauses, which the
// bare node:http + undici proxy does not have. With 32 MB semi-spaces the same load promoted 50–110
// bytes per request (the bare proxy: about 100), and GC pause time per request fell by a quarter to
// three quarters. V8 reads the size only at start-up, so it cannot be set from here as the sidecar
// sets its V8 flags. The cost is the young generation's memory once grown (up to 3 × 32 MB against
// 3 × 16 MB). The sidecar sizes its own the other way (core/inject/sidecar-node-options.ts): it is
// one per pod.
export const GATEWAY_NODE_OPTIONS = '--max-semi-space-size=32';
