// Gateway API automated deployment, as istiod does it: every Gateway of meshgate's classes that is
// not a manual deployment gets a ServiceAccount, Deployment, Service and RoleBinding of its own
// (core/gateway-api/deployment-objects.ts), created here and kept so. Gateways, GatewayClasses and
// the objects this controller made (label gateway.istio.io/managed) are watched; after any change
// every Gateway is compared with what is stored, and only the fields this controller owns are
// written, only when they differ: a round with nothing to do writes nothing, and a user's edit to
// any other field stays. An object of the same name this controller did not make is left alone.
// Kubernetes deletes the objects with their Gateway (owner references); a Gateway that becomes a
// manual deployment is no longer looked after. The gateways' service accounts are the subjects of
// the ClusterRoleBinding meshgate-gateways, which lets them read the configuration. A write that
// fails is logged and the round run again with back-off (reconcile-rounds.ts).

import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { isRecord } from '../core/config/load.js';
import { KubeInformer } from '../core/sources/kube-informer.js';
import { collectionPath, type KubeKind, type KubeObject } from '../core/sources/kube-objects.js';
import { describeError, kubeJson } from '../core/sources/kube-request.js';
import { covers, withOwned } from '../core/sources/kube-owned.js';
import { ReconcileRounds } from '../core/sources/reconcile-rounds.js';
import { withoutStaleKeys } from '../core/gateway-api/owned-metadata.js';
import {
  CREATE_ONLY, MANAGED_LABEL, controllerOf, deploymentObjects, isAutomated, serviceAccountName, type GatewayObject,
} from '../core/gateway-api/deployment-objects.js';

/** The ClusterRoleBinding (deploy/rbac.yaml) whose subjects are the gateways' service accounts. */
export const GATEWAYS_BINDING = 'meshgate-gateways';
/** Writes of one object in a row that do not hold before this controller stops writing it. */
const MAX_UNHELD_WRITES = 3;
/** The ClusterRole it binds: what a gateway reads, and the status it writes. */
const GATEWAYS_ROLE = 'meshgate-ingressgateway';

export interface GatewayDeployerOptions {
  readonly kubeconfig: KubeConfig;
  /** The meshgate image the gateways run. */
  readonly image: string;
  readonly logger: Logger;
  readonly backoff?: { readonly initialMs: number; readonly maxMs: number };
}

const OWNED: readonly KubeKind[] = [
  { kind: 'ServiceAccount', apiVersion: 'v1', plural: 'serviceaccounts', crd: false },
  { kind: 'Service', apiVersion: 'v1', plural: 'services', crd: false },
  { kind: 'Deployment', apiVersion: 'apps/v1', plural: 'deployments', crd: false },
  { kind: 'RoleBinding', apiVersion: 'rbac.authorization.k8s.io/v1', plural: 'rolebindings', crd: false },
];

export class GatewayDeployer {
  readonly #opts: GatewayDeployerOptions;
  readonly #gateways: KubeInformer;
  readonly #classes: KubeInformer;
  readonly #owned: ReadonlyMap<string, KubeInformer>;
  readonly #binding: KubeInformer;
  readonly #informers: readonly KubeInformer[];
  /**
   * `kind ns/name` of objects found without our label → the Gateway's generation and metadata then:
   * not tried again (each try is a create the API server refuses) until the Gateway changes.
   */
  readonly #foreign = new Map<string, string>();
  readonly #rounds: ReconcileRounds;
  /** `kind ns/name` → what was written, and how many writes of it in a row did not hold. */
  readonly #unheld = new Map<string, { wanted: string; tries: number; said: boolean }>();

  constructor(opts: GatewayDeployerOptions) {
    this.#opts = opts;
    const common = { kubeconfig: opts.kubeconfig, logger: opts.logger, ...(opts.backoff ? { backoff: opts.backoff } : {}) };
    this.#gateways = new KubeInformer({ ...common, path: '/apis/gateway.networking.k8s.io/v1/gateways' });
    this.#classes = new KubeInformer({ ...common, path: '/apis/gateway.networking.k8s.io/v1/gatewayclasses' });
    this.#owned = new Map(OWNED.map((k) => [k.kind, new KubeInformer({ ...common, path: collectionPath(k), labelSelector: MANAGED_LABEL })]));
    this.#binding = new KubeInformer({ ...common, path: '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', fieldSelector: `metadata.name=${GATEWAYS_BINDING}` });
    this.#informers = [this.#gateways, this.#classes, ...this.#owned.values(), this.#binding];
    this.#rounds = new ReconcileRounds({
      round: () => this.#round(),
      ready: () => this.#informers.every((i) => i.listed),
      ...(opts.backoff ? { backoff: opts.backoff } : {}),
      onRetry: (failed, delayMs) => opts.logger.info({ failed, retryInMs: delayMs }, 'gateway deployments: some writes failed; trying again'),
    });
    for (const i of this.#informers) i.onChange(() => this.#rounds.trigger());
  }

  /**
   * Starts watching; resolves once everything is listed and the first round is done (failed or
   * not). Until the Gateway API CRDs are installed the lists are retried and nothing is written.
   */
  async start(): Promise<void> {
    // No deadline (the longest timer Node has): a missing CRD or right is logged by the informer, retried, and waited out.
    await Promise.all(this.#informers.map((i) => i.start(2 ** 31 - 1)));
    this.#rounds.trigger();
    await this.#rounds.settled();
  }

  async close(): Promise<void> {
    await Promise.all([this.#rounds.close(), ...this.#informers.map((i) => i.close())]);
  }

  /** Every Gateway's objects and the gateways' binding compared and written; resolves to how many writes failed. */
  async #round(): Promise<number> {
    const classes = new Map<string, string>();
    for (const c of this.#classes.list()) {
      const controller = isRecord(c.spec) ? c.spec.controllerName : undefined;
      if (c.metadata?.name && typeof controller === 'string') classes.set(c.metadata.name, controller);
    }
    let failed = 0;
    const accounts: Array<{ kind: string; name: string; namespace: string }> = [];
    for (const raw of this.#gateways.list()) {
      if (this.#rounds.closed) return failed;
      const gw = raw as unknown as GatewayObject;
      if (!gw.metadata?.name || !isRecord(gw.spec) || !isAutomated(gw, classes)) continue;
      // A Gateway on its way out: Kubernetes deletes what it owns.
      if (isRecord(raw.metadata) && raw.metadata.deletionTimestamp) continue;
      accounts.push({ kind: 'ServiceAccount', name: serviceAccountName(gw), namespace: gw.metadata.namespace });
      const objects = deploymentObjects(gw, controllerOf(gw.spec.gatewayClassName, classes)!, { image: this.#opts.image });
      // What a change of which may change the answer (not status, which gateways write often).
      const version = JSON.stringify([(raw.metadata as { generation?: unknown }).generation, gw.metadata.labels, gw.metadata.annotations]);
      for (const o of [objects.serviceAccount, objects.roleBinding, objects.service, objects.deployment]) {
        if (!(await this.#keep(o, version))) failed++;
      }
    }
    accounts.sort((a, b) => `${a.namespace}/${a.name}`.localeCompare(`${b.namespace}/${b.name}`));
    if (!(await this.#keepBinding(accounts))) failed++;
    return failed;
  }

  /** Creates the object, or writes our fields back into it when they differ. False when that failed. */
  async #keep(wanted: Record<string, unknown>, gatewayVersion: string): Promise<boolean> {
    const kind = OWNED.find((k) => k.kind === wanted.kind)!;
    const meta = wanted.metadata as { name: string; namespace: string };
    const live = this.#owned.get(kind.kind)!.get(meta.name, meta.namespace);
    const what = `${kind.kind} ${meta.namespace}/${meta.name}`;
    const path = collectionPath(kind, meta.namespace);
    if (!live && this.#foreign.get(what) === gatewayVersion) return true;
    this.#foreign.delete(what);
    try {
      if (!live) {
        // Not ours (no label) or not there: create answers 409 for the first, and we leave it be.
        const res = await kubeJson(this.#opts.kubeconfig, 'POST', path, [201, 200, 409], withOwned(CREATE_ONLY[kind.kind] ?? {}, wanted));
        if (res.status !== 409) this.#opts.logger.info({ object: what }, 'created for its Gateway');
        else {
          // Ours, made a moment ago and not yet seen by the watch, or someone else's.
          const found = await kubeJson(this.#opts.kubeconfig, 'GET', `${path}/${encodeURIComponent(meta.name)}`, [200]);
          const labels = isRecord(found.body.metadata) && isRecord(found.body.metadata.labels) ? found.body.metadata.labels : {};
          if (!(MANAGED_LABEL in labels)) this.#sayForeign(what, gatewayVersion);
        }
        return true;
      }
      // Keys the Gateway no longer hands down come off; the rest of what is there stays.
      const kept = withoutStaleKeys(live as Record<string, unknown>, wanted);
      if (kept === live && covers(live, wanted)) {
        this.#unheld.delete(what);
        return true;
      }
      // Our last writes of the same fields did not hold (something else writes them back, or the
      // API server stores them differently): writing again would only start another round of it.
      const text = JSON.stringify(wanted);
      const last = this.#unheld.get(what);
      const tries = last?.wanted === text ? last.tries : 0;
      if (tries >= MAX_UNHELD_WRITES) {
        if (!last!.said) this.#opts.logger.error({ object: what }, 'what was written for its Gateway does not stay (another controller?); not writing it again until the Gateway changes');
        last!.said = true;
        return true;
      }
      // Replace with the stored resourceVersion: if it changed meanwhile, 409, and its watch event brings another round.
      await kubeJson(this.#opts.kubeconfig, 'PUT', `${path}/${encodeURIComponent(meta.name)}`, [200], withOwned(kept, wanted));
      this.#unheld.set(what, { wanted: text, tries: tries + 1, said: false });
      this.#opts.logger.info({ object: what }, 'updated for its Gateway');
      return true;
    } catch (err) {
      this.#opts.logger.warn({ object: what, error: describeError(err) }, 'cannot write an object of a Gateway\'s deployment');
      return false;
    }
  }

  async #keepBinding(subjects: ReadonlyArray<{ kind: string; name: string; namespace: string }>): Promise<boolean> {
    const live = this.#binding.get(GATEWAYS_BINDING);
    const wanted = {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: GATEWAYS_BINDING, labels: { app: 'meshgate-control' } },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: GATEWAYS_ROLE },
      subjects,
    };
    // Subjects only: roleRef cannot change, and a binding to another role is not ours to fix.
    if (live && covers(live, { subjects })) return true;
    if (!live && subjects.length === 0) return true;
    const path = '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings';
    try {
      if (live) await kubeJson(this.#opts.kubeconfig, 'PUT', `${path}/${GATEWAYS_BINDING}`, [200], { ...(live as KubeObject), subjects });
      else await kubeJson(this.#opts.kubeconfig, 'POST', path, [201, 200], wanted);
      return true;
    } catch (err) {
      this.#opts.logger.warn({ object: `ClusterRoleBinding ${GATEWAYS_BINDING}`, error: describeError(err) }, 'cannot give the gateways\' service accounts their rights (kubectl apply -k deploy/ creates this binding)');
      return false;
    }
  }

  #sayForeign(what: string, gatewayVersion: string): void {
    this.#foreign.set(what, gatewayVersion);
    this.#opts.logger.warn({ object: what }, `exists without the ${MANAGED_LABEL} label: left alone, the Gateway is not deployed there`);
  }
}
