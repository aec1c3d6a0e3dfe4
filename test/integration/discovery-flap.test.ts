/**
 * A group missing from one discovery answer is not taken as removed: the controller watches a CRD
 * through a proxy in front of the real API server that can drop the group from `/apis` answers.
 * Dropped once, nothing of the group is deleted downstream; dropped for good, its objects are.
 */
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { adminRequest, createNamespace, deleteNamespace, expectStatus, kubeContext } from "../kube/harness.js"
import { type ProxyServer, serveAdminProxy } from "../support/AdminProxy.js"
import { eventually, type RunningController, startController } from "../support/controller.js"
import { freePort } from "../support/ports.js"
import { parsePrometheusText } from "../support/prometheus.js"
import { type Receiver, startReceiver } from "../support/Receiver.js"

interface DiscoveryList {
  items?: Array<{ metadata?: { name?: string } }>
  groups?: Array<{ name?: string }>
}

/** Removes `group` from an aggregated (`items`) or legacy (`groups`) `/apis` answer. */
const withoutGroup = (body: string, group: string): string => {
  const list = JSON.parse(body) as DiscoveryList
  if (list.items) list.items = list.items.filter((item) => item.metadata?.name !== group)
  if (list.groups) list.groups = list.groups.filter((item) => item.name !== group)
  return JSON.stringify(list)
}

let ns: string
let group: string
let receiver: Receiver
let proxy: ProxyServer
let controller: RunningController
/** How many of the next `/apis` answers lack the group; `Infinity` for good. */
let dropAnswers = 0
let droppedAnswers = 0
let apiPort: number
/** The series of `/metrics` that name the widgets type. */
const widgetSeries = async () =>
  // In-process: a histogram may show once per test file's copy of `effect`.
  parsePrometheusText(await (await fetch(`http://127.0.0.1:${apiPort}/metrics`)).text(), {
    allowDuplicateSeries: true,
  }).filter((sample) => sample.labels.type === `widgets.${group}`)
/** Every `/apis` answer served. */
let groupAnswers = 0

const widgetId = (name: string) => `${ns}/${group}/v1/Widget/${name}`
const deletesOf = (id: string) => receiver.requests.filter((r) => r.payload.deletes.includes(id)).length

const createWidget = async (name: string) => {
  let status = 0
  // The API server answers for the new type once the CRD is Established.
  await eventually(
    async () => {
      status = (
        await adminRequest("POST", `/apis/${group}/v1/namespaces/${ns}/widgets`, {
          apiVersion: `${group}/v1`,
          kind: "Widget",
          metadata: { name },
        })
      ).status
      return status === 201
    },
    () => `cannot create Widget ${name}: ${status}`,
  )
}

beforeAll(async () => {
  ns = await createNamespace("flap")
  group = `${ns}.example.com`
  expectStatus(
    await adminRequest("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", {
      metadata: { name: `widgets.${group}` },
      spec: {
        group,
        scope: "Namespaced",
        names: { plural: "widgets", singular: "widget", kind: "Widget", listKind: "WidgetList" },
        versions: [
          {
            name: "v1",
            served: true,
            storage: true,
            schema: { openAPIV3Schema: { type: "object", "x-kubernetes-preserve-unknown-fields": true } },
          },
        ],
      },
    }),
    201,
  )
  await createWidget("w1")

  proxy = await serveAdminProxy(kubeContext(), "flap", (req, res, forward) => {
    const path = (req.url ?? "").split("?")[0]
    if (path === "/apis") groupAnswers++
    if (path !== "/apis" || dropAnswers <= droppedAnswers) {
      forward((answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers)
        answer.pipe(res)
      })
      return
    }
    // The body is rewritten, so it must arrive whole and uncompressed, and its ETag (the real
    // document's) goes: revalidated with it, the API server would call the rewritten one current.
    delete req.headers["accept-encoding"]
    delete req.headers["if-none-match"]
    forward((answer) => {
      const chunks: Array<Buffer> = []
      answer.on("data", (chunk: Buffer) => chunks.push(chunk))
      answer.on("end", () => {
        const body = withoutGroup(Buffer.concat(chunks).toString("utf8"), group)
        droppedAnswers++
        const { "transfer-encoding": _chunked, etag: _etag, ...headers } = answer.headers
        res.writeHead(answer.statusCode ?? 502, {
          ...headers,
          "content-length": String(Buffer.byteLength(body)),
        })
        res.end(body)
      })
    })
  })
  receiver = await startReceiver()
  apiPort = await freePort()
  controller = await startController({
    kubeconfig: proxy.writeKubeconfig(mkdtempSync(join(tmpdir(), "flap-"))),
    receiver,
    endpoints: true,
    config: {
      watchResourceTypes: [`widgets.${group}`],
      apiBindAddress: { host: "127.0.0.1", port: apiPort },
      healthProbeBindAddress: { host: "127.0.0.1", port: await freePort() },
      resyncAuth: { mode: "none" },
    },
  })
  await eventually(
    () => receiver.state.has(widgetId("w1")),
    () => `no upsert of ${widgetId("w1")}`,
    60_000,
  )
})

afterAll(async () => {
  await controller?.stop()
  await proxy?.close()
  await receiver?.close()
  await adminRequest("DELETE", `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.${group}`)
  if (ns) await deleteNamespace(ns)
})

describe("discovery flaps", () => {
  it("a group missing from one discovery answer keeps its watch and its objects downstream", async () => {
    dropAnswers = droppedAnswers + 1
    const before = groupAnswers
    await controller.rediscover()
    // The answer that lacked the group was served, and a second discovery looked again.
    expect(droppedAnswers).toBe(dropAnswers)
    expect(groupAnswers - before).toBe(2)

    // The watch still runs: a new object arrives. Deletes are sent without debounce, so a delete of
    // w1 queued by that discovery would have reached the receiver before this upsert.
    await createWidget("marker")
    await eventually(
      () => receiver.state.has(widgetId("marker")),
      () => `no upsert of ${widgetId("marker")}: the watch stopped`,
      60_000,
    )
    expect(deletesOf(widgetId("w1"))).toBe(0)
    expect(receiver.state.has(widgetId("w1"))).toBe(true)
    expect((await widgetSeries()).length).toBeGreaterThan(0)
  })

  it("a group missing from two discovery answers is removed, and its objects deleted downstream", async () => {
    dropAnswers = Number.POSITIVE_INFINITY
    await controller.rediscover()
    await eventually(
      () => !receiver.state.has(widgetId("w1")) && !receiver.state.has(widgetId("marker")),
      () => "the group's objects are still in the receiver",
    )
    expect(deletesOf(widgetId("w1"))).toBe(1)
    // The type's metric series went with it.
    expect(await widgetSeries()).toEqual([])
  })
})
