// What injection writes when it is not told otherwise: the image deploy/ installs and the control
// plane's Service as proxies reach it.

export const DEFAULT_INJECT_IMAGE = 'meshgate:0.1.0';
export const DEFAULT_CONTROL_ADDRESS = 'https://meshgate-control.istio-system.svc:15012';

/**
 * `meshgate wait` as the image runs it (its entrypoint is `node bin/meshgate.js` in /app): the
 * postStart hook of a proxy that holds the app until it is ready. A hook's exec gets no entrypoint.
 */
export const DEFAULT_WAIT_COMMAND: readonly string[] = ['node', '/app/bin/meshgate.js', 'wait'];

/** A native sidecar's preStop hook: start draining when the pod begins to stop (the agent port's POST /drain). */
export const DEFAULT_DRAIN_COMMAND: readonly string[] = ['node', '/app/bin/meshgate.js', 'request', '--debug-port', '15020', 'POST', 'drain'];
