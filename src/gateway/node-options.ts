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

/**
 * Set by `meshgate gateway` on itself (node:v8 setFlagsFromString) before it loads its configuration,
 * as the sidecar sets its own (NODE_OPTIONS does not accept it):
 *
 * - `--heap-growing-percent=20`: V8 lets the old generation grow, before its next full collection,
 *   to up to about three times what was live at the last one. A gateway's live heap is its
 *   configuration (about 23 KB per service), and each reload leaves the snapshot it replaced and the
 *   rebuild's intermediate objects there: at 10,000 services 10 edits took the heap from 233 to
 *   520 MB before a full collection came, and RSS to 625 MB, pages V8 then keeps for a while. With
 *   the old generation let grow by a fifth, the same edits ended at 265 MB of heap and 458 MB of RSS
 *   (the same build, one run each, one after the other on a loaded machine). Requests' garbage
 *   nearly all dies young (above), so this makes full collections more frequent mostly while the
 *   configuration is read or rebuilt. docs/benchmarks.md (scale, fifth pass) has the measurements.
 * - `--semi-space-growth-factor=32`: the young generation goes from its start size to the 32 MB
 *   semi-spaces above at its first growth instead of in five doublings. V8 starts it at 1 MB and
 *   doubles it only when what survived collections since the last doubling adds up to its size, so
 *   a fresh gateway at saturation served some 40,000 requests with half of it (twice the
 *   scavenges), and two gateways of one build under the same load sat at different sizes for a
 *   while. V8 also shrinks it when traffic stops (to 8–32 MB in seven of seven runs after 20–30 s
 *   idle), and the first seconds of load after that took 5–14 times the scavenges per request and
 *   6–67 µs of GC pause a request against 1–10. With the factor every gateway measured was back at
 *   full size by the end of every window, fresh or after idling (1.2 and 3.2 scavenges per 1,000 requests in the
 *   first 3 s after 30 s idle, against 5.6 and 5.9 without, same runs). Memory: 21 MB more RSS for
 *   the first 10–30 s after start, then the same 72–73 MB idle; 10–20 MB more idle after load.
 *   Pinning the size instead (`--min-semi-space-size`) would hold 64 MB from the start, and Node
 *   refuses it in NODE_OPTIONS; this flag is read at each growth, so it can be set here.
 */
export const GATEWAY_V8_FLAGS = '--heap-growing-percent=20 --semi-space-growth-factor=32';
