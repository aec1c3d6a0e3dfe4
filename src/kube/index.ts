/**
 * Kubernetes access: credentials from a kubeconfig or the pod's service account, authenticated
 * JSON requests, watch streams and paginated lists, and the errors they fail with.
 */
export { type KubeAuthMaterial, type KubeTls, resolveAuth } from "./KubeAuth.js"
export {
  type KubeBodyOptions,
  KubeClient,
  type KubeClientOptions,
  type KubeClientShape,
  type KubeListOptions,
  type KubeQuery,
  type KubeRequest,
  type KubeRequestOptions,
  type KubeWatchOptions,
  UserInfo,
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
export {
  ListMeta,
  ListPage,
  MediaType,
  WatchEvent,
  WatchEventType,
  type WatchParams,
  watchQuery,
} from "./KubeWatch.js"
