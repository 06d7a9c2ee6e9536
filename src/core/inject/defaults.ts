// What injection writes when it is not told otherwise: the image deploy/ installs and the control
// plane's Service as proxies reach it.

export const DEFAULT_INJECT_IMAGE = 'meshgate:0.1.0';
export const DEFAULT_CONTROL_ADDRESS = 'https://meshgate-control.istio-system.svc:15012';
