/** The resource type a watch is on, and the URL of its collection. */
import type { ResourceKind } from "../record/Instance.js"
import { resourceListPath } from "./DiscoveryResult.js"

/** What the watcher needs to know of a type; discovery provides it. */
export interface WatchTarget extends ResourceKind {
  readonly plural: string
  readonly namespaced: boolean
}

/**
 * `/api/v1/configmaps`, `/apis/apps/v1/deployments`: every namespace at once; with a namespace, a
 * namespaced type's collection in that namespace (`/api/v1/namespaces/ns/configmaps`).
 */
export const collectionPath = (target: WatchTarget, namespace?: string): string =>
  target.namespaced && namespace !== undefined
    ? `${resourceListPath(target.group, target.version)}/namespaces/${namespace}/${target.plural}`
    : `${resourceListPath(target.group, target.version)}/${target.plural}`

/** CustomResourceDefinitions: watched for re-discovery and for the capabilities pipeline. */
export const customResourceDefinitions: WatchTarget = {
  group: "apiextensions.k8s.io",
  version: "v1",
  kind: "CustomResourceDefinition",
  plural: "customresourcedefinitions",
  namespaced: false,
}
