/**
 * Kubernetes access: credentials from a kubeconfig or the pod's service account, authenticated
 * JSON requests, streaming GETs read line by line, and the errors they fail with.
 */
export { type KubeAuthMaterial, type KubeTls, resolveAuth } from "./KubeAuth.js"
export {
  KubeClient,
  type KubeClientOptions,
  type KubeClientShape,
  type KubeQuery,
  type KubeRequestOptions,
  type KubeStreamOptions,
  type WithSchema,
} from "./KubeClient.js"
export {
  type InClusterOptions,
  KubeConfigSource,
  type KubeConfigSourceShape,
  type LoadOptions,
} from "./KubeConfigSource.js"
export {
  isConflict,
  isForbidden,
  isGone,
  isKubeApiError,
  isNotFound,
  isRetriable,
  isUnauthorized,
  KubeApiError,
  KubeConfigError,
  KubeDecodeError,
  type KubeError,
  KubeTransportError,
  type KubeTransportReason,
} from "./KubeError.js"
export { describeIdentity, type KubeAuthMethod, type KubeIdentity } from "./KubeIdentity.js"
export {
  parseRetryAfter,
  parseStatus,
  reasonForCode,
  retryAfterSeconds,
  Status,
  StatusCause,
  StatusDetails,
  statusFromUnknown,
} from "./KubeStatus.js"
export { ListMeta, ListPage, MediaType, type WatchParams, watchQuery } from "./KubeWatch.js"
