// Waiting on a KubeInformer without polling: looked at again after each change it reports.

import type { KubeInformer } from '../../src/core/sources/kube-informer.js';

/** Resolves once `check` holds; rejects after `ms` saying `what` was not reached. */
export function informed(i: KubeInformer, check: () => boolean, what: string, ms = 20_000): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const done = (): void => {
      if (!check()) return;
      off();
      clearTimeout(timer);
      resolve();
    };
    const off = i.onChange(done);
    const timer = setTimeout(() => (off(), reject(new Error(`not reached in ${ms} ms: ${what}`))), ms);
    done();
  });
}
