/**
 * The watcher end to end: the controller's Layers against the real control plane, posting to a
 * real receiver. Each test works in its own namespace and compares the receiver with the cluster.
 */
import { Metric } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { watchEvents } from "../../src/metrics/Metrics.js"
import type { InstanceRecord } from "../../src/record/Payload.js"
import {
  adminRequest,
  createNamespace,
  deleteNamespace,
  expectStatus,
  expireResourceVersions,
  kubeContext,
  restartApiServer,
} from "../kube/harness.js"
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
    config: {
      watchResourceTypes: ["configmaps", "namespaces", "deployments.apps", "secrets", "widgets"],
      batchMaxSize: 50,
    },
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

/**
 * Creates a ConfigMap and waits until the receiver has it: everything the configmaps watch saw
 * before it has been processed by then, so the absence of an earlier effect can be asserted.
 */
const sendMarker = async (ns: string) => {
  const name = `marker-${Date.now()}-${Math.floor(Math.random() * 1e6)}`
  expectStatus(await adminRequest("POST", `/api/v1/namespaces/${ns}/configmaps`, { metadata: { name } }), 201)
  await eventually(
    () => receiver.state.has(`${ns}/v1/ConfigMap/${name}`),
    () => `marker ${name} never arrived`,
  )
}

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

    // Data (like spec and status) is not part of the record: changing it sends nothing. A marker
    // created after the change arrives through the same watch, after it; had the change made an
    // upsert, that upsert would have ripened first and been sent no later than the marker's.
    const before = requestsMentioning(id).length
    await patch({ data: { key: "other value" } })
    await sendMarker(ns)
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

  it("a CRD created after start is watched under its preferred version, once; deleting the CRD deletes its objects downstream", async () => {
    const ns = await createNamespace("watch-crd")
    const group = `${ns}.example.com`
    const version = (name: string, storage: boolean) => ({
      name,
      served: true,
      storage,
      schema: { openAPIV3Schema: { type: "object", "x-kubernetes-preserve-unknown-fields": true } },
    })
    expectStatus(
      await adminRequest("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", {
        metadata: { name: `widgets.${group}` },
        spec: {
          group,
          scope: "Namespaced",
          names: { plural: "widgets", singular: "widget", kind: "Widget", listKind: "WidgetList" },
          versions: [version("v1", true), version("v2", false)],
        },
      }),
      201,
    )
    // The API server answers for the new type once the CRD is Established.
    let created = 0
    await eventually(
      async () => {
        created = (
          await adminRequest("POST", `/apis/${group}/v1/namespaces/${ns}/widgets`, {
            apiVersion: `${group}/v1`,
            kind: "Widget",
            metadata: { name: "w1", labels: { size: "large" } },
          })
        ).status
        return created === 201
      },
      () => `cannot create a Widget: ${created}`,
    )
    const v2 = `${ns}/${group}/v2/Widget/w1`
    await eventually(
      () => receiver.state.has(v2),
      () => `no upsert of ${v2}`,
      60_000,
    )
    expect(receiver.state.get(v2)).toMatchObject({
      apiGroup: group,
      apiVersion: `${group}/v2`,
      labels: { size: "large" },
    })
    // Synced once, under the preferred version only.
    expect([...receiver.history.keys()].filter((id) => id.includes("/Widget/w1"))).toEqual([v2])

    expectStatus(
      await adminRequest(
        "DELETE",
        `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.${group}`,
      ),
      200,
    )
    await eventually(
      () => !receiver.state.has(v2),
      () => `${v2} still in the receiver`,
      60_000,
    )
    await deleteNamespace(ns)
  })

  it("namespace deletion with 300 objects: 300 deletes in batches of at most 50, not one request per object", async () => {
    const ns = await createNamespace("watch-nsdel")
    for (let i = 0; i < 300; i++) {
      expectStatus(
        await adminRequest("POST", `/api/v1/namespaces/${ns}/configmaps`, { metadata: { name: `cm-${i}` } }),
        201,
      )
    }
    const ours = () => [...receiver.state.keys()].filter((id) => id.startsWith(`${ns}/v1/ConfigMap/cm-`))
    await eventually(
      () => ours().length === 300,
      () => `receiver has ${ours().length} of 300`,
      60_000,
    )
    // The receiver is away while the namespace goes: all 300 deletes are pending when it comes
    // back, so the mechanism, not the timing of the namespace controller, decides the requests.
    const deleteEvents = () =>
      controller.runtime.runPromise(
        Metric.value(Metric.tagged(Metric.tagged(watchEvents, "type", "configmaps"), "op", "Delete")),
      )
    const deletesBefore = (await deleteEvents()).count
    await receiver.stop()
    await deleteNamespace(ns, { wait: true, timeoutMs: 120_000 })
    // 300 ConfigMaps and the namespace's kube-root-ca.crt.
    await eventually(
      async () => (await deleteEvents()).count - deletesBefore >= 301 && (await controller.pending()) >= 301,
      () => "the deletes are not all pending",
    )
    const firstRequest = receiver.requests.length
    await receiver.start()
    await eventually(
      () => ours().length === 0,
      () => `${ours().length} not deleted`,
      120_000,
    )
    const deleting = receiver.requests
      .slice(firstRequest)
      .filter((r) => r.payload.deletes.some((id) => id.startsWith(`${ns}/v1/ConfigMap/cm-`)))
    const deletes = deleting.flatMap((r) =>
      r.payload.deletes.filter((id) => id.startsWith(`${ns}/v1/ConfigMap/cm-`)),
    )
    expect(new Set(deletes).size).toBe(300)
    for (const request of deleting)
      expect(request.payload.deletes.length + request.payload.upserts.length).toBeLessThanOrEqual(50)
    // 300 deletes fill six requests; other pending entries sharing a batch can push them into a seventh.
    expect(deleting.length).toBeGreaterThanOrEqual(6)
    expect(deleting.length).toBeLessThanOrEqual(7)
    console.log(`namespace deletion: 300 deletes in ${deleting.length} requests`)
  })

  const churnNamespace = async (prefix: string, count: number) => {
    const ns = await createNamespace(prefix)
    for (let i = 0; i < count; i++) {
      expectStatus(
        await adminRequest("POST", `/api/v1/namespaces/${ns}/configmaps`, {
          metadata: { name: `cm-${i}`, labels: { v: "0" } },
        }),
        201,
      )
    }
    await eventually(
      async () => (await differences(receiver, [configMaps], ns)).length === 0,
      () => "initial state not synced",
    )
    return ns
  }

  /** Changes and deletes through a flaky API server: failures while it is down are ignored. */
  const mutate = async (ns: string, round: number, count: number) => {
    for (let i = 0; i < count; i++) {
      const path = `/api/v1/namespaces/${ns}/configmaps/cm-${i}`
      const request =
        i % 7 === round % 7
          ? adminRequest("DELETE", path)
          : adminRequest(
              "PATCH",
              path,
              { metadata: { labels: { v: String(round) } } },
              { contentType: "application/merge-patch+json" },
            )
      await request.catch(() => undefined)
    }
  }

  it("kube-apiserver restarted mid-stream with changes and deletes around it: the receiver converges", async () => {
    const ns = await churnNamespace("watch-restart", 40)
    await mutate(ns, 1, 40)
    await restartApiServer()
    await mutate(ns, 2, 40)
    await eventually(
      async () => (await differences(receiver, [configMaps], ns)).length === 0,
      () => "not converged after the restart",
      60_000,
    ).catch(async (error) => {
      throw new Error(`${error}: ${(await differences(receiver, [configMaps], ns)).slice(0, 10).join(", ")}`)
    })
    await deleteNamespace(ns)
  })

  it("a forced 410 Gone on the open watches: relist, deletes synthesised, the receiver converges", async () => {
    const ns = await churnNamespace("watch-gone", 40)
    await mutate(ns, 3, 40)
    await expireResourceVersions()
    await mutate(ns, 4, 40)
    await eventually(
      async () => (await differences(receiver, [configMaps], ns)).length === 0,
      () => "not converged after 410",
      60_000,
    ).catch(async (error) => {
      throw new Error(`${error}: ${(await differences(receiver, [configMaps], ns)).slice(0, 10).join(", ")}`)
    })
    await deleteNamespace(ns)
  })
})
