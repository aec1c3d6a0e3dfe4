/**
 * What the controller forwards to the receiver besides the records' own fields, end to end:
 *
 * - `ANNOTATION_KEYS` / `LABEL_KEYS` against the real control plane: an object's annotations and
 *   labels arrive filtered as configured (and as the oracle, test/support/oracle.ts, says);
 * - `ENDPOINT_HEADERS_FILE` with the configured sink and a real receiver: the file's headers arrive
 *   on every request, a changed file changes them without a restart, and the token owns
 *   `Authorization`; the real process (`node dist/main.js`) stops at start on a bad file.
 */
import { execFile } from "node:child_process"
import { mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { promisify } from "node:util"
import { Duration, Effect, Layer, ManagedRuntime } from "effect"
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest"
import { SyncConfig, syncConfigFromEnv } from "../../src/config/Config.js"
import type { SyncPayload } from "../../src/record/Payload.js"
import * as Sinks from "../../src/sink/Select.js"
import { InstanceSink } from "../../src/sink/Sink.js"
import { adminRequest, createNamespace, deleteNamespace, expectStatus, kubeContext } from "../kube/harness.js"
import { eventually, startController } from "../support/controller.js"
import { expectedRecord, type OracleType, recordDifferences } from "../support/oracle.js"
import { killAll, spawnController } from "../support/process.js"
import { type Receiver, startReceiver } from "../support/Receiver.js"
import { record } from "../unit/fixtures.js"

const configMaps: OracleType = { group: "", version: "v1", kind: "ConfigMap", plural: "configmaps" }

const cleanups: Array<() => Promise<unknown>> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

const receiver = async () => {
  const r = await startReceiver()
  cleanups.push(() => r.close())
  return r
}

/** The configuration the controller would read from these environment variables. */
const fromEnv = (env: Record<string, string>) => Effect.runPromise(syncConfigFromEnv(env))

describe("ANNOTATION_KEYS and LABEL_KEYS", () => {
  it("ANNOTATION_KEYS=description forwards only description and */description; LABEL_KEYS narrows labels", async () => {
    const env = { ANNOTATION_KEYS: "description", LABEL_KEYS: "app.kubernetes.io/*" }
    const parsed = await fromEnv(env)
    const r = await receiver()
    const controller = await startController({
      kubeconfig: kubeContext().adminKubeconfig,
      receiver: r,
      config: {
        watchResourceTypes: ["configmaps"],
        annotationKeys: parsed.annotationKeys,
        labelKeys: parsed.labelKeys,
      },
    })
    cleanups.push(() => controller.stop())
    const ns = await createNamespace("forward-keys")
    cleanups.push(() => deleteNamespace(ns))
    const created = expectStatus(
      await adminRequest("POST", `/api/v1/namespaces/${ns}/configmaps`, {
        metadata: {
          name: "described",
          labels: { app: "web", "app.kubernetes.io/name": "web" },
          annotations: {
            description: "Main web server",
            "team.io/description": "Owned by team A",
            other: "not forwarded",
            "kubernetes.io/description": "a tool's prefix, still a description",
          },
        },
      }),
      201,
    ).json as {
      metadata: {
        name: string
        namespace: string
        labels: Record<string, string>
        annotations: Record<string, string>
        creationTimestamp: string
      }
    }
    const id = `${ns}/v1/ConfigMap/described`
    await eventually(
      () => r.state.has(id),
      () => `${id} never arrived`,
    )
    const got = r.state.get(id)!
    expect(got.annotations).toEqual({
      description: "Main web server",
      "team.io/description": "Owned by team A",
      "kubernetes.io/description": "a tool's prefix, still a description",
    })
    expect(got.labels).toEqual({ "app.kubernetes.io/name": "web" })
    expect(
      recordDifferences(
        expectedRecord(configMaps, created.metadata, {
          annotationKeys: env.ANNOTATION_KEYS,
          labelKeys: env.LABEL_KEYS,
        }),
        got,
      ),
    ).toEqual([])
  })
})

describe("ENDPOINT_HEADERS_FILE", () => {
  // dist/ for the process test, built without blocking the worker (a synchronous build can starve
  // vitest's own messages on a busy machine).
  beforeAll(() => promisify(execFile)("npx", ["tsc", "-p", "tsconfig.build.json"]), 300_000)
  afterAll(() => killAll())
  const payload = (name: string): SyncPayload => ({ upserts: [record(name)], deletes: [] })

  /** The sink the controller builds from its configuration (`Sinks.layerFromConfig`), kept open. */
  const configuredSink = async (r: Receiver, env: Record<string, string>) => {
    const config = await fromEnv({ INSTANCES_ENDPOINT: r.url, ...env })
    const runtime = ManagedRuntime.make(
      Sinks.layerFromConfig.pipe(
        Layer.provide(SyncConfig.layerFrom({ ...config, sendTimeout: Duration.seconds(5) })),
      ),
    )
    cleanups.push(() => runtime.dispose())
    const sink = await runtime.runPromise(InstanceSink)
    return { send: (p: SyncPayload) => runtime.runPromise(sink.send(p)) }
  }

  const tempDir = async () => {
    const dir = await mkdtemp(join(tmpdir(), "headers-it-"))
    cleanups.push(() => rm(dir, { recursive: true, force: true }))
    return dir
  }

  it("the receiver sees the file's headers, and the new ones after the file changes", async () => {
    const r = await receiver()
    const file = join(await tempDir(), "headers")
    await writeFile(file, "# routing\nX-Tenant: team-a\nX-Api-Key: first-key\n")
    const sink = await configuredSink(r, { ENDPOINT_HEADERS_FILE: file })

    await sink.send(payload("a"))
    expect(r.requests).toHaveLength(1)
    expect(r.requests[0]!.headers["x-tenant"]).toBe("team-a")
    expect(r.requests[0]!.headers["x-api-key"]).toBe("first-key")
    expect(r.requests[0]!.headers["content-type"]).toMatch(/^application\/json/)

    await writeFile(file, "X-Tenant: team-b\n")
    await sink.send(payload("b"))
    expect(r.requests[1]!.headers["x-tenant"]).toBe("team-b")
    expect(r.requests[1]!.headers["x-api-key"]).toBeUndefined()

    // Broken later: the last valid headers go on being sent.
    await writeFile(file, "X-Tenant team-c\n")
    await sink.send(payload("c"))
    expect(r.requests[2]!.headers["x-tenant"]).toBe("team-b")
    expect(r.state.has("default/v1/ConfigMap/c")).toBe(true)
  })

  it("the token file owns Authorization; without one the header file may set it; a bad file stops start-up", async () => {
    const r = await receiver()
    const dir = await tempDir()
    const headers = join(dir, "headers")
    const token = join(dir, "token")
    await writeFile(token, "t0ken\n")
    await writeFile(headers, "X-Tenant: a\n")
    const both = await configuredSink(r, { ENDPOINT_HEADERS_FILE: headers, ENDPOINT_TOKEN_FILE: token })
    await both.send(payload("a"))
    expect(r.requests[0]!.headers.authorization).toBe("Bearer t0ken")
    expect(r.requests[0]!.headers["x-tenant"]).toBe("a")

    await writeFile(headers, "Authorization: ApiKey k-1\n")
    const own = await configuredSink(r, { ENDPOINT_HEADERS_FILE: headers })
    await own.send(payload("b"))
    expect(r.requests[1]!.headers.authorization).toBe("ApiKey k-1")

    await expect(
      configuredSink(r, { ENDPOINT_HEADERS_FILE: headers, ENDPOINT_TOKEN_FILE: token }),
    ).rejects.toThrow(
      `ENDPOINT_HEADERS_FILE: "${headers}" line 1: Authorization is set by ENDPOINT_TOKEN_FILE`,
    )
    await writeFile(headers, "Content-Type: text/plain\n")
    await expect(configuredSink(r, { ENDPOINT_HEADERS_FILE: headers })).rejects.toThrow(
      `ENDPOINT_HEADERS_FILE: "${headers}" line 1: Content-Type is set by the controller itself`,
    )
    expect(r.requests).toHaveLength(2)
  })

  it("the process stops at start, exit 1, on a bad headers file: the error names file and line, never the value", async () => {
    const r = await receiver()
    const file = join(await tempDir(), "headers")
    await writeFile(file, "X-Tenant: team-a\nBearer s3cret-value\n")
    const spawned = spawnController({
      KUBECONFIG: kubeContext().adminKubeconfig,
      INSTANCES_ENDPOINT: r.url,
      ENDPOINT_HEADERS_FILE: file,
      HEALTH_PROBE_BIND_ADDRESS: "127.0.0.1:0",
      API_BIND_ADDRESS: "127.0.0.1:0",
    })
    expect((await spawned.exit).code).toBe(1)
    expect(spawned.stderr()).toContain(
      `ENDPOINT_HEADERS_FILE: \\"${file}\\" line 2: expected \`Name: value\``,
    )
    expect(spawned.stderr() + spawned.stdout()).not.toContain("s3cret")
    expect(r.requests).toHaveLength(0)
  })
})
