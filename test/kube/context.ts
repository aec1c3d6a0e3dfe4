/**
 * What the integration global setup hands to tests through vitest's `provide`/`inject`.
 * Everything is a plain string so it survives the trip to the worker processes.
 */
export interface KubeContext {
  /** kube-apiserver URL, https://127.0.0.1:<port>; the same across apiserver restarts. */
  readonly server: string
  /** PEM file of the CA that signed the serving certificate and every client certificate. */
  readonly caFile: string
  /** Kubeconfig (embedded cert data) for CN=admin, O=system:masters. */
  readonly adminKubeconfig: string
  readonly adminCertFile: string
  readonly adminKeyFile: string
  /** Kubeconfig (embedded cert data) for an authenticated user in no group: discovery only. */
  readonly userKubeconfig: string
  readonly userCertFile: string
  readonly userKeyFile: string
  /** The unprivileged user's name (its certificate's CN), for RoleBindings. */
  readonly userName: string
  /** Kubernetes version of the binaries, e.g. "v1.36.3". */
  readonly kubernetesVersion: string
  /** etcd client URL (http://127.0.0.1:<port>); its JSON gateway is under /v3/. */
  readonly etcdUrl: string
  /** Base URL of the global setup's control server (restart/stop/start/compact/expire). */
  readonly controlUrl: string
}

declare module "vitest" {
  export interface ProvidedContext {
    kube: KubeContext
  }
}
