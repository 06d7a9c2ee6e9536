// `meshgate wait`: returns once the sidecar beside it is ready, Istio's `pilot-agent wait`. Injection
// runs it as the proxy container's postStart hook when the pod's ProxyConfig holds the application
// until the proxy starts: the kubelet starts the next container only after the hook returns, so the
// app's first connection finds its sidecar serving. It asks the readiness URL every period until an
// answer is 200, and gives up (exit 1, so the kubelet restarts the container) after the timeout.
// Istio's defaults: 60 s, a request every 500 ms, each given 500 ms.

import { request } from 'node:http';
import { parse } from './options.js';
import { UsageError } from './main.js';

export const DEFAULT_WAIT_URL = 'http://localhost:15021/healthz/ready';

export const WAIT_HELP = `usage: meshgate wait [options]

Waits until the sidecar is ready: asks URL every period until it answers 200 (exit 0), or gives up
after the timeout (exit 1). Injection runs it as the proxy's postStart hook when the pod's ProxyConfig
sets holdApplicationUntilProxyStarts. Istio's pilot-agent wait, whose --timeoutSeconds, --periodMillis,
--requestTimeoutMillis and --url these flags are, with the same defaults.

  --timeout-seconds N         how long to wait in all (default 60)
  --period-millis N           between two attempts (default 500)
  --request-timeout-millis N  how long one attempt may take (default 500)
  --url URL                   the readiness URL (default ${DEFAULT_WAIT_URL})`;

export async function runWaitCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    'timeout-seconds': { type: 'string' },
    'period-millis': { type: 'string' },
    'request-timeout-millis': { type: 'string' },
    url: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    console.log(WAIT_HELP);
    return 0;
  }
  const number = (flag: 'timeout-seconds' | 'period-millis' | 'request-timeout-millis', fallback: number): number => {
    const text = values[flag];
    const n = text === undefined ? fallback : Number(text);
    if (!Number.isFinite(n) || n < 0) throw new UsageError(`--${flag}: '${text}' is not a number`);
    return n;
  };
  const timeoutMs = number('timeout-seconds', 60) * 1000;
  const periodMs = number('period-millis', 500);
  const requestMs = number('request-timeout-millis', 500);
  const url = values.url ?? DEFAULT_WAIT_URL;
  if (!/^http:\/\//.test(url)) throw new UsageError(`--url: '${url}' must be an http:// URL`);
  console.error(`meshgate wait: waiting for the sidecar to be ready at ${url} (timeout: ${timeoutMs / 1000} s)`);
  const giveUp = Date.now() + timeoutMs;
  let last = 'no attempt made';
  for (;;) {
    if (Date.now() + periodMs > giveUp) break;
    await new Promise((resolve) => setTimeout(resolve, periodMs));
    last = await attempt(url, requestMs);
    if (last === '') {
      console.error('meshgate wait: the sidecar is ready');
      return 0;
    }
  }
  console.error(`meshgate wait: timed out waiting for the sidecar to be ready; last attempt: ${last}`);
  return 1;
}

/** One GET; '' when it answered 200, else what went wrong. */
function attempt(url: string, timeoutMs: number): Promise<string> {
  return new Promise((resolve) => {
    const req = request(url, { method: 'GET', timeout: timeoutMs }, (res) => {
      res.resume();
      res.once('end', () => resolve(res.statusCode === 200 ? '' : `HTTP status ${res.statusCode}`));
      res.once('error', (err) => resolve(err.message));
    });
    req.once('timeout', () => req.destroy(new Error(`no answer in ${timeoutMs} ms`)));
    req.once('error', (err) => resolve(err.message));
    req.end();
  });
}
