// Readonly shapes of the Kubernetes objects the registry is built from, so that a folder of YAML can
// describe a cluster exactly as the API server would hold it.

export interface ServicePortSpec {
  readonly name?: string;
  readonly port: number;
  readonly targetPort?: number | string;
  readonly protocol?: string;
  readonly appProtocol?: string;
}

export interface ServiceSpec {
  readonly type?: string;
  readonly selector?: Readonly<Record<string, string>>;
  readonly ports?: readonly ServicePortSpec[];
  readonly clusterIP?: string;
  readonly clusterIPs?: readonly string[];
  readonly externalName?: string;
}

/** discovery.k8s.io/v1 EndpointSlice: its payload sits at the top level, not under `spec`. */
export interface EndpointSliceBody {
  readonly addressType?: string;
  readonly endpoints?: ReadonlyArray<{
    readonly addresses: readonly string[];
    readonly conditions?: { readonly ready?: boolean; readonly serving?: boolean; readonly terminating?: boolean };
    readonly hostname?: string;
    readonly nodeName?: string;
    readonly zone?: string;
    readonly targetRef?: { readonly kind?: string; readonly name?: string; readonly namespace?: string };
  }>;
  readonly ports?: ReadonlyArray<{ readonly name?: string; readonly port?: number; readonly protocol?: string; readonly appProtocol?: string }>;
}

/** v1 Endpoints: also top-level. */
export interface EndpointsBody {
  readonly subsets?: ReadonlyArray<{
    readonly addresses?: ReadonlyArray<{ readonly ip: string; readonly hostname?: string; readonly nodeName?: string }>;
    readonly notReadyAddresses?: ReadonlyArray<{ readonly ip: string }>;
    readonly ports?: ReadonlyArray<{ readonly name?: string; readonly port: number; readonly protocol?: string }>;
  }>;
}

/** Labels on an EndpointSlice that tie it to its Service, and labels the registry reads from pods' slices. */
export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';

/** v1 Pod, as far as the registry cares: its labels (for subsets), IP and service account. */
export interface PodSpec {
  readonly serviceAccountName?: string;
  /** With `subdomain` naming a headless Service: the pod's DNS name `<hostname>.<subdomain>.<ns>.svc.<domain>`. */
  readonly hostname?: string;
  readonly subdomain?: string;
  readonly nodeName?: string;
  readonly containers?: ReadonlyArray<{ readonly name?: string; readonly ports?: ReadonlyArray<{ readonly name?: string; readonly containerPort: number }> }>;
}

export interface PodStatus {
  readonly podIP?: string;
  readonly phase?: string;
}
