// The Node.js options a sidecar runs with: NODE_OPTIONS of the injected proxy container, and of the
// benchmark's sidecar, so that it measures what a pod runs (docs/benchmarks.md).
//
// V8 sizes its young generation for allocation-heavy programs: semi-spaces grow to 16 MB each, and
// once grown they stay resident. A proxy's garbage is per request and dies young, so small
// semi-spaces only mean more, shorter scavenges; at 4 MB a sidecar under load holds about 24 MB less.
// The old generation is left to V8's default limit: a proxy's configuration can be large, and a
// limit it outgrows would end the process.
export const SIDECAR_NODE_OPTIONS = '--max-semi-space-size=4';
