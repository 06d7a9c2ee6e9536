// How a sidecar's Node.js runs: NODE_OPTIONS and the environment of the injected proxy container
// (also the benchmark's sidecar, so that it measures what a pod runs), and the V8 flags the sidecar
// command sets on itself, which NODE_OPTIONS does not accept. docs/benchmarks.md has the measurements.
//
// V8 sizes its young generation for allocation-heavy programs: semi-spaces grow to 16 MB each, and
// once grown they stay resident. A proxy's garbage is per request and dies young, so small
// semi-spaces only mean more, shorter scavenges. 4 MB is where that stops paying: at 2 MB a sidecar
// under load held about 4 MB less, but on a quiet machine the p90 it adds at 1000 req/s went from
// 0.50–0.59 ms to 1.22–1.99 ms (alternate runs of the bench; docs/benchmarks.md). At 1 MB the old
// generation grew by about as much as the young one shrank: more of each request's objects lived
// through two scavenges and were promoted.
// The old generation is left to V8's default limit: a proxy's configuration can be large, and a
// limit it outgrows would end the process.
export const SIDECAR_NODE_OPTIONS = '--max-semi-space-size=4';

/**
 * glibc gives each thread that allocates an arena of its own (up to 8 per core), and keeps what an
 * arena once held: V8's background compile and GC threads left a few MB each in theirs under load.
 * One arena serves a process whose JavaScript runs on one thread: with two, the second (V8's helper
 * threads') held about 0.5 MB more idle, and sharing one cost no CPU per request we could resolve
 * (docs/benchmarks.md, eighth round); each thread's malloc cache keeps it off the arena's lock.
 */
export const SIDECAR_MALLOC_ARENA_MAX = '1';

/** The environment variables injection and the benchmark give a sidecar's process. */
export const SIDECAR_ENV: Readonly<Record<string, string>> = {
  NODE_OPTIONS: SIDECAR_NODE_OPTIONS,
  MALLOC_ARENA_MAX: SIDECAR_MALLOC_ARENA_MAX,
};

/**
 * Set by `meshgate sidecar` on itself (node:v8 setFlagsFromString) before it loads its configuration
 * or opens a connection, so that they hold however the process was started:
 *
 * - `--optimize-for-size`: V8 lets the old generation grow, before it collects, to up to four times
 *   what was live at the last full collection (at least 8 MB more). A proxy holds little that lives
 *   (its configuration, its connections) and much that dies at middle age (requests in flight when a
 *   scavenge runs): at 1000 req/s that headroom was most of what the sidecar gained under load. With
 *   this flag V8 grows the old generation by at most 1.3 times (at least 2 MB), makes each full
 *   collection a memory-reducing one, and lets its memory reducer collect once the sidecar goes
 *   quiet: without the flag the reducer waits for a low allocation rate, which V8 never sees in an
 *   idle Node process, so the young generation that start-up grew stays (2.7–8.2 MB more idle). Set
 *   here at run time it leaves the 4 MB semi-spaces alone (on node's command line it would shrink
 *   them to 1 MB). At 1000 req/s the sidecar makes under 0.1 full collections per 1000 requests, and
 *   its CPU per request with and without the flag stayed within the noise of our measurements.
 * - `--liftoff-only`: undici's HTTP parser (WebAssembly) stays in V8's baseline tier. The top tier's
 *   compile of its hot function took some 35 MB of compiler memory, the sidecar's peak; the baseline
 *   code parses the app's answers at a fraction of the sidecar's CPU.
 * - `--gc-memory-reducer-start-delay-ms=500`: start-up (the first configuration, the certificate, the
 *   first snapshot) grows the young generation to its maximum, and V8 shrinks it again only with a
 *   memory-reducing collection, which its memory reducer makes once allocation has gone quiet, 8 s
 *   after it is armed by default. A sidecar that has started and sits idle held 6 MB more until
 *   then: read 2 s after ready, 67.5–68.4 MB against 61.5–62.3 MB with this delay (docs/benchmarks.md,
 *   fourth round). The reducer collects only while the process allocates little, so load is not
 *   affected.
 */
export const SIDECAR_V8_FLAGS = '--optimize-for-size --liftoff-only --gc-memory-reducer-start-delay-ms=500';
