// Keeps the MutatingWebhookConfiguration's caBundle at the mesh root, so the API server trusts the
// injector's serving certificate: set at start and again whenever the root changes. Every webhook
// in the configuration gets the same bundle (they all call this control plane). A failed update is
// retried with back-off; the injector keeps serving meanwhile (the API server's calls fail until
// the bundle is right, and with failurePolicy Fail no pod is created without its sidecar).

import { HttpMethod, RequestContext, type KubeConfig } from '@kubernetes/client-node';
import { fetch } from 'undici';
import type { Logger } from 'pino';

export const WEBHOOK_CONFIG_PATH = '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/';

export interface CaBundleUpdater {
  /** Sets the bundle now (and retries until it is set or a newer root replaces it). */
  update(rootCertPem: string): Promise<void>;
  close(): void;
}

export function caBundleUpdater(kc: KubeConfig, configName: string, log: Logger, retryMs = 2000): CaBundleUpdater {
  let wanted = '';
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  const path = WEBHOOK_CONFIG_PATH + encodeURIComponent(configName);

  const attempt = async (bundle: string, delay: number): Promise<void> => {
    if (closed || bundle !== wanted) return;
    try {
      const current = await call(kc, HttpMethod.GET, path);
      const webhooks = Array.isArray(current.webhooks) ? (current.webhooks as Array<Record<string, unknown>>) : [];
      const ops = webhooks.flatMap((w, i) => ((w.clientConfig as Record<string, unknown> | undefined)?.caBundle === bundle ? [] : [{ op: 'add', path: `/webhooks/${i}/clientConfig/caBundle`, value: bundle }]));
      if (ops.length > 0) await call(kc, HttpMethod.PATCH, path, ops);
      log.info({ webhookConfiguration: configName, webhooks: webhooks.length, changed: ops.length }, 'injector caBundle is the mesh root');
    } catch (err) {
      log.warn({ webhookConfiguration: configName, err: (err as Error).message, retryInMs: delay }, 'cannot set the injector caBundle; retrying');
      timer = setTimeout(() => void attempt(bundle, Math.min(delay * 2, 60_000)), delay);
      timer.unref();
    }
  };

  return {
    update: (rootCertPem) => {
      wanted = Buffer.from(rootCertPem).toString('base64');
      clearTimeout(timer);
      return attempt(wanted, retryMs);
    },
    close: () => {
      closed = true;
      clearTimeout(timer);
    },
  };
}

async function call(kc: KubeConfig, method: HttpMethod, path: string, body?: unknown): Promise<Record<string, unknown>> {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('the kubeconfig has no current cluster');
  const ctx = new RequestContext(cluster.server + path, method);
  await kc.applySecurityAuthentication(ctx);
  const dispatcher = ctx.getDispatcher();
  try {
    const res = await fetch(ctx.getUrl(), {
      method,
      headers: {
        ...ctx.getHeaders(),
        accept: 'application/json',
        ...(body !== undefined ? { 'content-type': 'application/json-patch+json' } : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      ...(dispatcher ? { dispatcher } : {}),
      signal: AbortSignal.timeout(30_000),
    });
    const text = await res.text();
    if (res.status !== 200) throw new Error(`${res.status} from ${method} ${path}: ${text.slice(0, 200)}`);
    return JSON.parse(text) as Record<string, unknown>;
  } finally {
    await dispatcher?.close().catch(() => undefined);
  }
}
