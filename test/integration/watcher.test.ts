/**
 * The watcher end to end: the controller's Layers against the real control plane, posting to a
 * real receiver. Each test works in its own namespace and compares the receiver with the cluster.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { InstanceRecord } from "../../src/Payload.js"
import { adminRequest, createNamespace, deleteNamespace, expectStatus, kubeContext } from "../kube/harness.js"
import { eventually, type RunningController, startController } from "../support/controller.js"
import { differences, type ListedType } from "../support/convergence.js"
import { type Receiver, startReceiver } from "../support/Receiver.js"

const configMaps: ListedType = { group: "", version: "v1", kind: "ConfigMap", plural: "configmaps" }
const deployments: ListedType = { group: "apps", version: "v1", kind: "Deployment", plural: "deployments" }

let receiver: Receiver
let controller: RunningController

beforeAll(async () => {
  receiver = await startReceiver()
  controller = await startController({
    kubeconfig: kubeContext().adminKubeconfig,
    receiver,
    config: { watchResourceTypes: ["configmaps", "namespaces", "deployments.apps", "secrets"] },
  })
  await eventually(
    () => controller.ready(),
    () => "controller never became ready",
  )
})

afterAll(async () => {
  await controller?.stop()
  await receiver?.close()
})

const requestsMentioning = (id: string) =>
  receiver.requests.filter(
    (r) => r.payload.upserts.some((u) => u.id === id) || r.payload.deletes.includes(id),
  )

const settleMs = 1_500

describe("watcher", () => {
  it("create, label change, annotation change, no-op change and delete reach the receiver as the contract says", async () => {
    const ns = await createNamespace("watch-life")
    const id = `${ns}/v1/ConfigMap/web`
    expectStatus(
      await adminRequest("POST", `/api/v1/namespaces/${ns}/configmaps`, {
        metadata: { name: "web", labels: { app: "web" } },
        data: { key: "value" },
      }),
      201,
    )
    await eventually(
      () => receiver.state.has(id),
      () => `no upsert of ${id}`,
    )
    const created = receiver.state.get(id)!
    const listed = (await adminRequest("GET", `/api/v1/namespaces/${ns}/configmaps/web`)).json as {
      metadata: { creationTimestamp: string }
    }
    expect(created).toEqual({
      id,
      namespace: ns,
      name: "web",
      kind: "ConfigMap",
      apiVersion: "v1",
      apiGroup: "",
      labels: { app: "web" },
      annotations: {},
      createdAt: listed.metadata.creationTimestamp,
    } satisfies InstanceRecord)

    const patch = (body: unknown) =>
      adminRequest("PATCH", `/api/v1/namespaces/${ns}/configmaps/web`, body, {
        contentType: "application/merge-patch+json",
      }).then((r) => expectStatus(r, 200))

    await patch({ metadata: { labels: { app: "web", tier: "frontend" } } })
    await eventually(
      () => receiver.state.get(id)?.labels.tier === "frontend",
      () => "label change not delivered",
    )

    await patch({
      metadata: {
        annotations: {
          description: "Main web server",
          "kubectl.kubernetes.io/last-applied-configuration": "{}",
        },
      },
    })
    await eventually(
      () => receiver.state.get(id)?.annotations.description === "Main web server",
      () => "annotation change not delivered",
    )
    expect(receiver.state.get(id)?.annotations).toEqual({ description: "Main web server" })

    // Data (like spec and status) is not part of the record: changing it sends nothing.
    const before = requestsMentioning(id).length
    await patch({ data: { key: "other value" } })
    await new Promise((resolve) => setTimeout(resolve, settleMs))
    expect(requestsMentioning(id).length).toBe(before)

    expectStatus(await adminRequest("DELETE", `/api/v1/namespaces/${ns}/configmaps/web`), 200)
    await eventually(
      () => !receiver.state.has(id),
      () => "delete not delivered",
    )
    const last = requestsMentioning(id).at(-1)!
    expect(last.payload.deletes).toEqual(expect.arrayContaining([id]))
    expect(await differences(receiver, [configMaps], ns)).toEqual([])
    await deleteNamespace(ns)
  })

  it("syncs a cluster-scoped object under _cluster and a named-group object with its apiGroup", async () => {
    const ns = await createNamespace("watch-scope")
    await eventually(
      () => receiver.state.has(`_cluster/v1/Namespace/${ns}`),
      () => `namespace ${ns} not synced`,
    )
    const namespaceRecord = receiver.state.get(`_cluster/v1/Namespace/${ns}`)!
    expect(namespaceRecord.namespace).toBe("_cluster")
    expect(namespaceRecord.apiGroup).toBe("")
    expectStatus(
      await adminRequest("POST", `/apis/apps/v1/namespaces/${ns}/deployments`, {
        metadata: { name: "api", labels: { app: "api" } },
        spec: {
          replicas: 0,
          selector: { matchLabels: { app: "api" } },
          template: {
            metadata: { labels: { app: "api" } },
            spec: { containers: [{ name: "c", image: "x" }] },
          },
        },
      }),
      201,
    )
    const id = `${ns}/apps/v1/Deployment/api`
    await eventually(
      () => receiver.state.has(id),
      () => `no upsert of ${id}`,
    )
    expect(receiver.state.get(id)).toMatchObject({
      apiGroup: "apps",
      apiVersion: "apps/v1",
      kind: "Deployment",
    })
    expect(await differences(receiver, [deployments, configMaps], ns)).toEqual([])
    await deleteNamespace(ns)
  })
})
