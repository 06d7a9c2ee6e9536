// Keeps the MutatingWebhookConfiguration's caBundle at the mesh root, so the API server trusts the
// injector's serving certificate: set at start, again whenever the root changes, and again whenever
// the configuration is changed under us. It is watched because `kubectl apply` of the manifests, a
// Helm upgrade or a re-created configuration puts back the bundle they hold (none), and with
// failurePolicy Fail no pod of an injected namespace is created until it is right. Every webhook in
// the configuration gets the same bundle (they all call this control plane). A failed update is
// retried with back-off; the injector keeps serving meanwhile.

import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { KubeInformer } from '../core/sources/kube-informer.js';
import { describeError, kubeJson } from '../core/sources/kube-request.js';

export const WEBHOOK_CONFIGS_PATH = '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations';

export interface CaBundleUpdater {
  /** Sets the bundle now (and retries until it is set or a newer root replaces it). */
  update(rootCertPem: string): Promise<void>;
  close(): Promise<void>;
}

type Json = Record<string, unknown>;

/**
 * The JSON patch that gives every webhook of `config` the bundle: for each one that lacks it, a test
 * of its name at that index (the list may have changed since it was read: the API server then
 * refuses the patch with 422 and it is made again from a fresh read) and the bundle.
 */
export function caBundlePatch(config: unknown, bundle: string): Json[] {
  const webhooks = Array.isArray((config as Json | undefined)?.webhooks) ? ((config as Json).webhooks as Json[]) : [];
  return webhooks.flatMap((w, i) =>
    (w.clientConfig as Json | undefined)?.caBundle === bundle
      ? []
      : [
          { op: 'test', path: `/webhooks/${i}/name`, value: w.name },
          { op: 'add', path: `/webhooks/${i}/clientConfig/caBundle`, value: bundle },
        ],
  );
}

export function caBundleUpdater(kc: KubeConfig, configName: string, log: Logger, retryMs = 2000): CaBundleUpdater {
  let wanted = '';
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  let watched: KubeInformer | undefined;
  const path = `${WEBHOOK_CONFIGS_PATH}/${encodeURIComponent(configName)}`;

  let delay = retryMs;
  // One attempt at a time: the watch's first list (before our own patch) and update() both ask for
  // one at start, and two reads before either patch would patch twice. A request made while one runs
  // is made once more after it, from a fresh read.
  let running: Promise<void> | undefined;
  let again = false;

  const attempt = async (): Promise<void> => {
    const bundle = wanted;
    if (closed || bundle === '') return;
    clearTimeout(timer);
    timer = undefined;
    try {
      const { body: current } = await kubeJson(kc, 'GET', path, [200]);
      const patch = caBundlePatch(current, bundle);
      if (patch.length > 0) await kubeJson(kc, 'PATCH', path, [200], patch);
      delay = retryMs;
      const webhooks = Array.isArray(current.webhooks) ? current.webhooks.length : 0;
      log.info({ webhookConfiguration: configName, webhooks, changed: patch.length / 2 }, 'injector caBundle is the mesh root');
    } catch (err) {
      if (closed) return;
      log.warn({ webhookConfiguration: configName, error: describeError(err), retryInMs: delay }, 'cannot set the injector caBundle; retrying');
      timer = setTimeout(() => void settle(), delay);
      timer.unref();
      delay = Math.min(delay * 2, 60_000);
    }
  };

  const settle = (): Promise<void> => {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      do {
        again = false;
        await attempt();
      } while (again && !closed);
    })().finally(() => (running = undefined));
    return running;
  };

  const watch = (): KubeInformer => {
    // Read by name (a field selector), which RBAC authorizes by resourceNames.
    const informer = new KubeInformer({ kubeconfig: kc, path: WEBHOOK_CONFIGS_PATH, fieldSelector: `metadata.name=${configName}`, logger: log });
    informer.onChange(() => {
      const live = informer.get(configName);
      if (!closed && wanted && live && caBundlePatch(live, wanted).length > 0) {
        // At start this can be the list before our own patch; the attempt then finds nothing to do.
        log.info({ webhookConfiguration: configName }, 'the injector caBundle is not the mesh root (manifests applied again?); setting it');
        void settle();
      }
    });
    // It retries by itself until it lists; a failure to start is logged by it, and changes nothing here.
    informer.start().catch(() => undefined);
    return informer;
  };

  return {
    update: (rootCertPem) => {
      wanted = Buffer.from(rootCertPem).toString('base64');
      watched ??= watch();
      return settle();
    },
    close: async () => {
      closed = true;
      clearTimeout(timer);
      await watched?.close();
    },
  };
}
