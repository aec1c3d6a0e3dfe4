/**
 * Scoping what is synced, against the real control plane: a label selector applied by the API
 * server, namespaces selected by name and glob (one name: watched server-side in that namespace),
 * and the opt-out annotation on an object or on its namespace, each with its transitions.
 *
 * "Never sent" is proven with a marker: an object created after the one that must not arrive,
 * in the same watch, whose arrival shows that the watch has processed everything before it.
 */
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Option } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { SyncConfigShape } from "../../src/config/Config.js"
import { adminRequest, createNamespace, deleteNamespace, expectStatus, kubeContext } from "../kube/harness.js"
import { eventually, type RunningController, startController } from "../support/controller.js"
import { type Receiver, startReceiver } from "../support/Receiver.js"
import { startRecordingProxy } from "../support/RecordingProxy.js"

const optOut = "vectordb-sync.io/exclude"
const cmId = (ns: string, name: string) => `${ns}/v1/ConfigMap/${name}`
const namespaces: Array<string> = []
const cleanups: Array<() => Promise<void>> = []

const namespace = async (prefix: string) => {
  const ns = await createNamespace(prefix)
  namespaces.push(ns)
  return ns
}

const createConfigMap = async (ns: string, name: string, metadata: object = {}) =>
  expectStatus(
    await adminRequest("POST", `/api/v1/namespaces/${ns}/configmaps`, { metadata: { name, ...metadata } }),
    201,
  )

const patch = async (path: string, metadata: object) =>
  expectStatus(
    await adminRequest("PATCH", path, { metadata }, { contentType: "application/merge-patch+json" }),
    200,
  )

const arrives = (receiver: Receiver, id: string) =>
  eventually(
    () => receiver.state.has(id),
    () => `${id} never arrived`,
    60_000,
  )

const leaves = (receiver: Receiver, id: string) =>
  eventually(
    () => !receiver.state.has(id),
    () => `${id} still at the receiver`,
    60_000,
  )

const everReceived = (receiver: Receiver, id: string) => receiver.history.has(id)

const start = async (config: Partial<SyncConfigShape>, kubeconfig = kubeContext().adminKubeconfig) => {
  const receiver = await startReceiver()
  const controller: RunningController = await startController({ kubeconfig, receiver, config })
  cleanups.push(async () => {
    await controller.stop()
    await receiver.close()
  })
  await eventually(
    () => controller.ready(),
    () => "controller never became ready",
    60_000,
  )
  return receiver
}

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup()
  for (const ns of namespaces) await deleteNamespace(ns)
})

describe("LABEL_SELECTOR", () => {
  let ns: string
  let receiver: Receiver
  beforeAll(async () => {
    ns = await namespace("select")
    receiver = await start({
      watchResourceTypes: ["configmaps"],
      labelSelector: Option.some(`sync-${ns}=yes`),
    })
  })

  it("syncs only matching objects; one that stops matching is deleted, one that starts is sent", async () => {
    const label = `sync-${ns}`
    await createConfigMap(ns, "unlabelled")
    await createConfigMap(ns, "matching", { labels: { [label]: "yes" } })
    await arrives(receiver, cmId(ns, "matching"))
    expect(everReceived(receiver, cmId(ns, "unlabelled"))).toBe(false)

    await patch(`/api/v1/namespaces/${ns}/configmaps/matching`, { labels: { [label]: "no" } })
    await leaves(receiver, cmId(ns, "matching"))
    await patch(`/api/v1/namespaces/${ns}/configmaps/unlabelled`, { labels: { [label]: "yes" } })
    await arrives(receiver, cmId(ns, "unlabelled"))
  })
})

describe("WATCH_NAMESPACES and EXCLUDE_NAMESPACES", () => {
  it("globs select namespaces, exclusions apply after them, cluster-scoped objects are unaffected", async () => {
    const prefix = `ns${Date.now().toString(36)}`
    const included = await namespace(`${prefix}-team`)
    const excluded = await namespace(`${prefix}-team-tmp`)
    const other = await namespace(`${prefix}-other`)
    const receiver = await start({
      watchResourceTypes: ["configmaps", "namespaces"],
      watchNamespaces: [`${prefix}-team-*`],
      excludeNamespaces: [`${prefix}-team-tmp-*`],
    })
    await createConfigMap(excluded, "a")
    await createConfigMap(other, "a")
    // Created last, in the same watch: once it is there, the two above have been processed.
    await createConfigMap(included, "a")
    await arrives(receiver, cmId(included, "a"))
    expect(everReceived(receiver, cmId(excluded, "a"))).toBe(false)
    expect(everReceived(receiver, cmId(other, "a"))).toBe(false)
    // Namespaces are cluster-scoped: every one of them is synced.
    for (const ns of [included, excluded, other])
      expect(receiver.state.has(`_cluster/v1/Namespace/${ns}`)).toBe(true)
  })

  it("one namespace: namespaced types are listed and watched in it, server-side", async () => {
    const ns = await namespace("only")
    const elsewhere = await namespace("elsewhere")
    const proxy = await startRecordingProxy(kubeContext())
    cleanups.push(() => proxy.close())
    const receiver = await start(
      { watchResourceTypes: ["configmaps", "namespaces"], watchNamespaces: [ns] },
      proxy.writeKubeconfig(mkdtempSync(join(tmpdir(), "only-"))),
    )
    await createConfigMap(elsewhere, "a")
    await createConfigMap(ns, "a")
    await arrives(receiver, cmId(ns, "a"))
    expect(everReceived(receiver, cmId(elsewhere, "a"))).toBe(false)
    const configMapRequests = proxy.requests
      .map((r) => r.path.split("?")[0])
      .filter((p) => p?.endsWith("/configmaps"))
    expect(configMapRequests.length).toBeGreaterThan(0)
    expect(new Set(configMapRequests)).toEqual(new Set([`/api/v1/namespaces/${ns}/configmaps`]))
    // Cluster-scoped types are still watched cluster-wide.
    expect(proxy.requests.some((r) => r.path.split("?")[0] === "/api/v1/namespaces")).toBe(true)
  })
})

describe(`the ${optOut} annotation`, () => {
  let receiver: Receiver
  beforeAll(async () => {
    receiver = await start({ watchResourceTypes: ["configmaps"] })
  })

  it("on an object: never sent; added later, the object is deleted downstream; removed, it is sent again", async () => {
    const ns = await namespace("optout")
    await createConfigMap(ns, "hidden", { annotations: { [optOut]: "true" } })
    await createConfigMap(ns, "shown")
    await arrives(receiver, cmId(ns, "shown"))
    expect(everReceived(receiver, cmId(ns, "hidden"))).toBe(false)

    await patch(`/api/v1/namespaces/${ns}/configmaps/shown`, { annotations: { [optOut]: "true" } })
    await leaves(receiver, cmId(ns, "shown"))
    await patch(`/api/v1/namespaces/${ns}/configmaps/hidden`, { annotations: { [optOut]: null } })
    await arrives(receiver, cmId(ns, "hidden"))
  })

  it("on a namespace: its objects are deleted downstream, and sent again when it is removed", async () => {
    const ns = await namespace("optout-ns")
    await createConfigMap(ns, "a")
    await arrives(receiver, cmId(ns, "a"))
    await patch(`/api/v1/namespaces/${ns}`, { annotations: { [optOut]: "true" } })
    await leaves(receiver, cmId(ns, "a"))
    await leaves(receiver, cmId(ns, "kube-root-ca.crt"))
    // While opted out, a new object of the namespace is not sent (the marker is in another namespace
    // of the same watch, created after it).
    await createConfigMap(ns, "b")
    const marker = await namespace("optout-marker")
    await createConfigMap(marker, "m")
    await arrives(receiver, cmId(marker, "m"))
    expect(everReceived(receiver, cmId(ns, "b"))).toBe(false)

    await patch(`/api/v1/namespaces/${ns}`, { annotations: { [optOut]: null } })
    await arrives(receiver, cmId(ns, "a"))
    await arrives(receiver, cmId(ns, "b"))
  })
})
