/**
 * The checkpoint of what the receiver holds, on the real binary (`node dist/main.js`) against the
 * real control plane: after a SIGKILL, objects deleted while no controller ran are deleted at the
 * receiver by the next process, also when the checkpoint spans several ConfigMaps; a damaged
 * checkpoint is logged and replaced, and never stops the controller.
 */
import { execFile } from "node:child_process"
import { randomBytes } from "node:crypto"
import { promisify } from "node:util"
import { NodeHttpClient } from "@effect/platform-node"
import { Duration, Effect, Either, Layer, ManagedRuntime } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as Controller from "../../src/Controller.js"
import { Checkpoint } from "../../src/checkpoint/Checkpoint.js"
import * as Codec from "../../src/checkpoint/Codec.js"
import * as Objects from "../../src/checkpoint/Objects.js"
import { SyncConfig } from "../../src/config/Config.js"
import { KubeClient } from "../../src/kube/KubeClient.js"
import { SyncPipeline } from "../../src/pipeline/Pipeline.js"
import * as HttpSink from "../../src/sink/HttpSink.js"
import { Watchers } from "../../src/watch/Watchers.js"
import { adminRequest, createNamespace, deleteNamespace, expectStatus, kubeContext } from "../kube/harness.js"
import { eventually, fastConfig } from "../support/controller.js"
import { differences } from "../support/convergence.js"
import { configMaps, converge, mustCreate, pool, remove } from "../support/faults/churn.js"
import { killAll, logLines, type Started, startReady } from "../support/process.js"
import { parsePrometheusText, sampleValue } from "../support/prometheus.js"
import { type Receiver, startReceiver } from "../support/Receiver.js"

/** Outside a cluster the controller's namespace is `default`. */
const NAMESPACE = "default"
const configMapPath = (name: string) => `/api/v1/namespaces/${NAMESPACE}/configmaps/${name}`
const checkpoints: Array<string> = []

// Built asynchronously: a synchronous build blocks the worker long enough under load for vitest's
// own RPC to time out.
beforeAll(() => promisify(execFile)("npx", ["tsc", "-p", "tsconfig.build.json"]), 180_000)
afterAll(async () => {
  await killAll()
  for (const name of checkpoints) {
    for (let index = 0; index < 64; index++) {
      const response = await adminRequest("DELETE", configMapPath(Objects.partName(name, index)))
      if (response.status === 404 && index > 0) break
    }
  }
})

const newCheckpointName = () => {
  const name = `checkpoint-test-${randomBytes(3).toString("hex")}`
  checkpoints.push(name)
  return name
}

/** The checkpoint as stored in the cluster: its ids and how many ConfigMaps hold them. */
const readCheckpoint = async (name: string) => {
  const head = await adminRequest("GET", configMapPath(name))
  if (head.status === 404) return undefined
  const first = expectStatus(head, 200).json as Objects.ConfigMap
  const count = Either.getOrThrow(Objects.partCountOf(first))
  const configMaps = [first]
  for (let index = 1; index < count; index++) {
    configMaps.push(
      expectStatus(await adminRequest("GET", configMapPath(`${name}-${index}`)), 200)
        .json as Objects.ConfigMap,
    )
  }
  const parts = configMaps.map((configMap) => Either.getOrThrow(Objects.bytesOf(configMap)))
  const ids = Either.getOrThrowWith(Codec.decode(parts), (error) => new Error(error.message))
  return { ids: new Set(ids), parts: count }
}

const startProcess = (receiver: Receiver, env: Record<string, string>): Promise<Started> =>
  startReady(receiver.url, { BATCH_MAX_SIZE: "500", CHECKPOINT: "true", ...env })

const idOf = (ns: string, name: string) => `${ns}/v1/ConfigMap/${name}`
const deletedAtReceiver = (receiver: Receiver) =>
  new Set(
    receiver.requests
      .filter((r) => r.answer.kind === "status" && r.answer.status < 300)
      .flatMap((r) => r.payload.deletes),
  )

/**
 * Sync `count` objects, wait until the checkpoint names them all, SIGKILL, delete a third and create
 * new ones, restart: the receiver gets a delete for every deleted id and every new object.
 */
const crashAndRestart = async (count: number, extra: Record<string, string>) => {
  const receiver = await startReceiver()
  const name = newCheckpointName()
  const env = { CHECKPOINT_NAME: name, ...extra }
  const ns = await createNamespace("checkpoint")
  // Random names: sorted ids share long prefixes and compress to a few bytes each; these do not.
  const names = Array.from({ length: count }, (_, i) => `cm-${i}-${randomBytes(6).toString("hex")}`)
  await pool(
    8,
    names.map((n) => () => mustCreate(configMaps, ns, n)),
  )
  const first = await startProcess(receiver, env)
  await converge(receiver, [configMaps], [ns])
  let stored: Awaited<ReturnType<typeof readCheckpoint>>
  await eventually(
    async () => {
      stored = await readCheckpoint(name)
      return stored !== undefined && names.every((n) => stored!.ids.has(idOf(ns, n)))
    },
    () => `the checkpoint never named every object: ${stored?.ids.size ?? "none"} ids`,
  )

  first.child.kill("SIGKILL")
  expect((await first.exit).signal).toBe("SIGKILL")
  const deleted = names.filter((_, i) => i % 3 === 0)
  await pool(
    8,
    deleted.map((n) => () => remove(configMaps, ns, n)),
  )
  const created = Array.from({ length: 5 }, (_, i) => `while-dead-${i}`)
  await pool(
    5,
    created.map((n) => () => mustCreate(configMaps, ns, n)),
  )

  const second = await startProcess(receiver, env)
  let left: ReadonlyArray<string> = []
  await eventually(
    async () => {
      left = await differences(receiver, [configMaps], ns)
      return left.length === 0
    },
    () => `differences after the restart: ${left.join(", ")}`,
  )
  const deletes = deletedAtReceiver(receiver)
  expect(deleted.filter((n) => !deletes.has(idOf(ns, n)))).toEqual([])
  for (const n of created) expect(receiver.state.has(idOf(ns, n))).toBe(true)

  // SIGTERM: the last write follows the final flush, and names exactly what the receiver holds.
  second.child.kill("SIGTERM")
  expect((await second.exit).code).toBe(0)
  const final = await readCheckpoint(name)
  const held = [...receiver.state.keys()].filter((id) => id.startsWith(`${ns}/`)).sort()
  expect([...(final?.ids ?? [])].filter((id) => id.startsWith(`${ns}/`)).sort()).toEqual(held)
  await receiver.close()
  await deleteNamespace(ns)
  return { before: stored!, after: final! }
}

describe("checkpoint of the ids the receiver holds", () => {
  it("SIGKILL, then deletes and creates while no controller runs: the next process deletes every deleted id downstream and sends every new object", async () => {
    const { before } = await crashAndRestart(30, {})
    expect(before.parts).toBe(1)
  })

  it("the same with the checkpoint split over several ConfigMaps", async () => {
    const { after, before } = await crashAndRestart(400, { CHECKPOINT_PART_BYTES: "1024" })
    expect(before.parts).toBeGreaterThanOrEqual(3)
    // Fewer ids after the deletes: parts no longer needed are deleted.
    const beyond = await adminRequest(
      "GET",
      configMapPath(Objects.partName(checkpoints.at(-1)!, after.parts)),
    )
    expect(beyond.status).toBe(404)
  })

  it("shutdown writes the checkpoint: with no periodic write due, it names what was still in its debounce window and the final flush delivered", async () => {
    const receiver = await startReceiver()
    const name = newCheckpointName()
    const ns = await createNamespace("checkpoint-final")
    // The controller's Layers as the process wires them, with a write interval no test reaches:
    // only the write on shutdown can store these ids.
    const checkpointed = Checkpoint.attach.pipe(
      Layer.provideMerge(Controller.coreLayer),
      Layer.provideMerge(
        Checkpoint.layer({
          namespace: NAMESPACE,
          name,
          partBytes: 1_000_000,
          writeInterval: Duration.hours(1),
        }),
      ),
    )
    const runtime = ManagedRuntime.make(
      checkpointed.pipe(
        Layer.provide(
          HttpSink.layer({ url: receiver.url, timeout: "5 seconds" }).pipe(
            Layer.provide(NodeHttpClient.layerUndici),
          ),
        ),
        Layer.provideMerge(KubeClient.layerFromFile(kubeContext().adminKubeconfig)),
        Layer.provide(
          SyncConfig.layerFrom({
            ...fastConfig,
            watchResourceTypes: ["configmaps"],
            debounceWindow: Duration.minutes(5),
            debounceMaxWait: Duration.minutes(10),
          }),
        ),
        Layer.orDie,
      ),
    )
    await runtime.runPromise(Effect.void)
    await eventually(
      () => runtime.runPromise(Effect.flatMap(Watchers, (w) => w.ready)),
      () => "never ready",
    )
    const names = ["a", "b", "c"]
    for (const n of names) await mustCreate(configMaps, ns, n)
    await eventually(
      async () =>
        (await runtime.runPromise(Effect.flatMap(SyncPipeline, (p) => p.receiverIds))).has(idOf(ns, "c")),
      () => "the objects never reached the pipeline",
    )
    expect(names.some((n) => receiver.state.has(idOf(ns, n)))).toBe(false)
    expect(await readCheckpoint(name)).toBeUndefined()
    await runtime.dispose()
    for (const n of names) expect(receiver.state.has(idOf(ns, n))).toBe(true)
    const stored = await readCheckpoint(name)
    for (const n of names) expect(stored?.ids.has(idOf(ns, n))).toBe(true)
    await receiver.close()
    await deleteNamespace(ns)
  })

  it("a damaged checkpoint is logged, the controller syncs without it and replaces it", async () => {
    const receiver = await startReceiver()
    const name = newCheckpointName()
    const damaged = Objects.toConfigMap(name, NAMESPACE, 0, 1, new TextEncoder().encode("not gzip"))
    expectStatus(await adminRequest("POST", `/api/v1/namespaces/${NAMESPACE}/configmaps`, damaged), 201)
    const ns = await createNamespace("checkpoint-damaged")
    await mustCreate(configMaps, ns, "visible")
    const started = await startProcess(receiver, { CHECKPOINT_NAME: name })
    await converge(receiver, [configMaps], [ns])
    // The error log line is the behaviour here: an operator must learn that the checkpoint was lost.
    const unusable = logLines(started.stderr()).find((line) =>
      String(line.message).startsWith("checkpoint unusable"),
    )
    expect(unusable?.logLevel).toBe("ERROR")
    expect(String(unusable?.annotations?.error)).toContain("part 0 is not gzip data")
    await eventually(
      async () => (await readCheckpoint(name).catch(() => undefined))?.ids.has(idOf(ns, "visible")) === true,
      () => "the damaged checkpoint was never replaced",
    )
    // The gauges describe the last write (the checkpoint's own ConfigMap joins the set once seen).
    const scrape = async () => parsePrometheusText(await (await fetch(`${started.apiUrl}/metrics`)).text())
    let samples = await scrape()
    await eventually(
      async () => {
        const stored = await readCheckpoint(name)
        samples = await scrape()
        return sampleValue(samples, "vectordb_sync_checkpoint_ids") === stored?.ids.size
      },
      () => `vectordb_sync_checkpoint_ids is ${sampleValue(samples, "vectordb_sync_checkpoint_ids")}`,
    )
    expect(
      sampleValue(samples, "vectordb_sync_checkpoint_writes_total", { outcome: "success" }),
    ).toBeGreaterThan(0)
    expect(sampleValue(samples, "vectordb_sync_checkpoint_writes_total", { outcome: "failed" })).toBe(0)
    expect(sampleValue(samples, "vectordb_sync_checkpoint_bytes")).toBeGreaterThan(20)
    started.child.kill("SIGTERM")
    expect((await started.exit).code).toBe(0)
    await receiver.close()
    await deleteNamespace(ns)
  })
})
