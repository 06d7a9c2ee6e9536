// The sidecar injector: a mutating admission webhook (HTTPS, by default on 15017) the API server calls
// with an AdmissionReview v1 for every pod the MutatingWebhookConfiguration's selectors chose. It
// answers with the JSONPatch that adds the sidecar (core/inject), or with no patch when the pod opts
// out, runs on the host network or already has a sidecar. Its serving certificate is signed by the
// mesh CA for `<service>.<namespace>.svc`; the configuration's caBundle is kept at the mesh root
// (webhook-ca-bundle.ts). A review it cannot read is refused (allowed: false): with
// failurePolicy Fail the pod is not created rather than created outside the mesh.

import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { CertificateAuthority } from '../core/pki/authority.js';
import { injectPod, type InjectOptions } from '../core/inject/inject-pod.js';
import { injectionDecision } from '../core/inject/selection.js';
import { podPatch } from '../core/inject/json-patch.js';
import { InjectionError } from '../core/inject/proxy-config.js';
import type { ControlMetrics } from './control-metrics.js';
import { isRecord } from '../core/config/load.js';

export const INJECTION_PORT = 15017;
export const INJECT_PATH = '/inject';
/** An AdmissionReview is a pod and a few fields; anything larger is not one. */
const MAX_BODY_BYTES = 4 * 1024 * 1024;

type Json = Record<string, unknown>;

export interface InjectionWebhookOptions {
  readonly ca: CertificateAuthority;
  /** The Service and namespace the API server calls (`<service>.<namespace>.svc`). */
  readonly serviceName: string;
  readonly namespace: string;
  readonly inject: InjectOptions;
  /** Namespace labels when known; the API server's selectors decide the namespace half otherwise. */
  readonly namespaceLabels?: (namespace: string) => Readonly<Record<string, string>> | undefined;
  readonly log: Logger;
  /** sidecar_injection_*_total, as istiod counts them. */
  readonly metrics?: Pick<ControlMetrics, 'injection'>;
  /** The mesh config's `enablePrometheusMerge` now (default true). */
  readonly prometheusMerge?: () => boolean;
  /** The trust domain the CA signs for now (TRUST_DOMAIN and ISTIO_META_MESH_ID of the sidecar). */
  readonly trustDomain?: () => string;
  /** The served mesh config's `defaultConfig` now: each pod's proxy.istio.io/config goes over it. */
  readonly meshDefaultConfig?: () => Record<string, unknown> | undefined;
  /** ENABLE_NATIVE_SIDECARS=auto in cluster mode: native sidecars for a pod (on this node, if scheduled)? */
  readonly nativeSidecars?: (podNodeName?: string) => boolean;
}

export function webhookNames(serviceName: string, namespace: string): string[] {
  return [`${serviceName}.${namespace}.svc`, `${serviceName}.${namespace}.svc.cluster.local`, serviceName, 'localhost', '127.0.0.1'];
}

export function createInjectionWebhook(opts: InjectionWebhookOptions): Server {
  const tls = opts.ca.issueServerCertificate(webhookNames(opts.serviceName, opts.namespace));
  return createServer({ cert: tls.certChainPem, key: tls.keyPem }, (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'POST' || path !== INJECT_PATH) return void send(res, 404, { message: 'not found' });
    readBody(req).then(
      (body) => {
        // The rest of the body is never read: the connection cannot carry another request.
        if (body === undefined) return send(res, 413, { message: 'AdmissionReview too large' }, { connection: 'close' });
        send(res, 200, review(body, opts));
      },
      () => res.destroy(),
    );
  });
}

/** The AdmissionReview answer for one request body. */
export function review(body: string, opts: Pick<InjectionWebhookOptions, 'inject' | 'namespaceLabels' | 'log' | 'metrics' | 'prometheusMerge' | 'trustDomain' | 'meshDefaultConfig' | 'nativeSidecars'>): Json {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    parsed = undefined;
  }
  const request = isRecord(parsed) && isRecord(parsed.request) ? parsed.request : undefined;
  const uid = typeof request?.uid === 'string' ? request.uid : '';
  let answer: Json;
  try {
    answer = parsed === undefined ? refusal('', 'the body is not JSON') : decide(parsed, request, uid, opts);
  } catch (err) {
    // A pod whose fields have the wrong types (`spec: 5`) is refused: the server must not fall over
    // on a body anyone who reaches the port can send, and a pod it cannot read gets no free pass.
    opts.log.warn({ problem: (err as Error).message }, 'admission review refused: it cannot be read');
    answer = refusal(uid, `the pod cannot be read: ${(err as Error).message}`);
  }
  const r = answer.response as Json;
  opts.metrics?.injection(r.allowed === false ? 'failure' : r.patch !== undefined ? 'success' : 'skip');
  return answer;
}

function decide(parsed: unknown, request: Json | undefined, uid: string, opts: Pick<InjectionWebhookOptions, 'inject' | 'namespaceLabels' | 'log' | 'prometheusMerge' | 'trustDomain' | 'meshDefaultConfig' | 'nativeSidecars'>): Json {
  const apiVersion = isRecord(parsed) ? parsed.apiVersion : undefined;
  if (!request || (apiVersion !== undefined && apiVersion !== 'admission.k8s.io/v1')) return refusal(uid, 'not an admission.k8s.io/v1 AdmissionReview');
  const pod = request.object as Json | undefined;
  const kind = (request.kind as Json | undefined)?.kind;
  if (kind !== 'Pod') return allowed(uid);
  // No object (a DELETE's review carries only oldObject): nothing to inject. An object that is not one is no pod.
  if (pod === undefined || pod === null) return allowed(uid);
  if (!isRecord(pod)) return refusal(uid, 'the review\'s object is not a pod');
  const namespace = typeof request.namespace === 'string' ? request.namespace : String((pod.metadata as Json | undefined)?.namespace ?? 'default');
  const name = podName(pod);
  const labels = opts.namespaceLabels?.(namespace);
  const decision = injectionDecision(pod, { namespace, ...(labels ? { namespaceLabels: labels } : {}), ...(opts.inject.revision ? { revision: opts.inject.revision } : {}) });
  if (!decision.inject) {
    opts.log.info({ pod: `${namespace}/${name}`, reason: decision.reason }, 'pod admitted without a sidecar');
    return allowed(uid);
  }
  const owner = ownerOf(pod, namespace);
  const merge = opts.prometheusMerge?.();
  const trustDomain = opts.trustDomain?.();
  const defaults = opts.meshDefaultConfig?.();
  const nodeName = (pod.spec as Json | undefined)?.nodeName;
  const native = opts.nativeSidecars?.(typeof nodeName === 'string' && nodeName ? nodeName : undefined);
  let injected: Json;
  try {
    injected = injectPod(pod, {
      ...opts.inject,
      ...(trustDomain ? { trustDomain } : {}),
      ...(owner ? { owner } : { workloadName: name }),
      ...(merge !== undefined ? { enablePrometheusMerge: merge } : {}),
      ...(defaults ? { meshDefaultConfig: defaults } : {}),
      ...(native !== undefined ? { nativeSidecars: native } : {}),
    });
  } catch (err) {
    if (!(err instanceof InjectionError)) throw err;
    opts.log.warn({ pod: `${namespace}/${name}`, problem: err.message }, 'pod refused: its sidecar cannot be injected');
    return refusal(uid, err.message);
  }
  const patch = podPatch(pod, injected);
  opts.log.info({ pod: `${namespace}/${name}` }, 'sidecar injected');
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    response: { uid, allowed: true, patchType: 'JSONPatch', patch: Buffer.from(JSON.stringify(patch)).toString('base64') },
  };
}

/** The workload behind a pod: a ReplicaSet's Deployment (its name less the template hash), or the owner itself. */
function ownerOf(pod: Json, namespace: string): InjectOptions['owner'] | undefined {
  const refs = (pod.metadata as Json | undefined)?.ownerReferences;
  const ref = Array.isArray(refs) ? (refs.find((r: Json) => r.controller === true) ?? refs[0]) as Json | undefined : undefined;
  if (!ref || typeof ref.name !== 'string' || typeof ref.kind !== 'string') return undefined;
  if (ref.kind === 'ReplicaSet' && /-[a-z0-9]{5,10}$/.test(ref.name)) {
    return { apiVersion: 'apps/v1', kind: 'Deployment', name: ref.name.replace(/-[a-z0-9]{5,10}$/, ''), namespace };
  }
  return { apiVersion: String(ref.apiVersion ?? 'v1'), kind: ref.kind, name: ref.name, namespace };
}

/** A pod at admission often has only generateName (`product-6d4f-`). */
function podName(pod: Json): string {
  const meta = (pod.metadata ?? {}) as Json;
  if (typeof meta.name === 'string' && meta.name) return meta.name;
  return typeof meta.generateName === 'string' ? meta.generateName.replace(/-$/, '') : '(unnamed)';
}

function allowed(uid: string): Json {
  return { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid, allowed: true } };
}

function refusal(uid: string, message: string): Json {
  return { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid, allowed: false, status: { code: 400, message: `meshgate injector: ${message}` } } };
}

function send(res: ServerResponse, status: number, body: Json, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers }).end(text);
}

function readBody(req: IncomingMessage): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) {
        req.pause();
        resolve(undefined);
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}
