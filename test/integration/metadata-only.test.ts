/**
 * Proof that the controller asks only for metadata: every LIST and WATCH it makes goes through a
 * recording proxy, and a Secret's data appears neither in what the API server sent it nor in any
 * payload.
 */
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, expect, it } from "vitest"
import { adminRequest, createNamespace, deleteNamespace, expectStatus, kubeContext } from "../kube/harness.js"
import { eventually, type RunningController, startController } from "../support/controller.js"
import { type Receiver, startReceiver } from "../support/Receiver.js"
import { type RecordingProxy, startRecordingProxy } from "../support/RecordingProxy.js"

let receiver: Receiver
let proxy: RecordingProxy
let controller: RunningController

beforeAll(async () => {
  receiver = await startReceiver()
  proxy = await startRecordingProxy(kubeContext())
  controller = await startController({
    kubeconfig: proxy.writeKubeconfig(mkdtempSync(join(tmpdir(), "proxy-"))),
    receiver,
    config: { watchResourceTypes: ["secrets", "configmaps"] },
  })
  await eventually(
    () => controller.ready(),
    () => "controller never became ready",
  )
})

afterAll(async () => {
  await controller?.stop()
  await proxy?.close()
  await receiver?.close()
})

it("every list and watch asks for PartialObjectMetadata, and a Secret's data never reaches the controller or the receiver", async () => {
  const ns = await createNamespace("metadata-only")
  const secretValue = "hunter2-correct-horse-battery-staple"
  const encoded = Buffer.from(secretValue).toString("base64")
  expectStatus(
    await adminRequest("POST", `/api/v1/namespaces/${ns}/secrets`, {
      metadata: { name: "db", labels: { app: "db" } },
      stringData: { password: secretValue },
    }),
    201,
  )
  const id = `${ns}/v1/Secret/db`
  await eventually(
    () => receiver.state.has(id),
    () => `no upsert of ${id}`,
  )
  expect(receiver.state.get(id)?.labels).toEqual({ app: "db" })

  const collections = proxy.requests.filter((r) => /^\/api\/v1\/(secrets|configmaps)(\?|$)/.test(r.path))
  const lists = collections.filter((r) => !r.path.includes("watch=1"))
  const watches = collections.filter((r) => r.path.includes("watch=1"))
  // Each type starts with a list: a LIST, or a watch that streams the initial list (WatchList).
  const initialLists = lists.length + watches.filter((r) => r.path.includes("sendInitialEvents=true")).length
  expect(initialLists).toBeGreaterThanOrEqual(2)
  expect(watches.length).toBeGreaterThanOrEqual(2)
  for (const r of lists)
    expect(r.accept).toBe("application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1")
  for (const r of watches)
    expect(r.accept).toBe("application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1")
  for (const r of collections) expect(r.method).toBe("GET")

  for (const body of proxy.responses) {
    expect(body).not.toContain(encoded)
    expect(body).not.toContain(secretValue)
  }
  for (const request of receiver.requests) {
    const text = JSON.stringify(request.payload)
    expect(text).not.toContain(encoded)
    expect(text).not.toContain(secretValue)
  }
  await deleteNamespace(ns)
})
