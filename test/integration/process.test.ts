/**
 * The real process (`node dist/main.js`, what `npm start` runs) against the real control plane:
 * configuration errors, health endpoints, and the final flush on SIGTERM.
 */
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Schema } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { SyncPayload } from "../../src/record/Payload.js"
import { adminRequest, createNamespace, deleteNamespace, expectStatus, kubeContext } from "../kube/harness.js"
import { makePki } from "../kube/pki.js"
import { eventually } from "../support/controller.js"
import { buildDist, freePort, killAll, spawnController } from "../support/process.js"
import { parsePrometheusText, sampleValue } from "../support/prometheus.js"
import { type Receiver, startReceiver } from "../support/Receiver.js"
import { startRecordingProxy } from "../support/RecordingProxy.js"
import { changesTakenIn, watchEvents } from "../support/WatchTap.js"

let receiver: Receiver

beforeAll(async () => {
  buildDist()
  receiver = await startReceiver()
}, 120_000)

afterAll(async () => {
  await killAll()
  await receiver?.close()
})

describe("the controller process", () => {
  it("exits 1 with one line per malformed variable, naming it", async () => {
    const spawned = spawnController({
      BATCH_MAX_SIZE: "abc",
      DEBOUNCE_WINDOW_MS: "-5",
      KUBECONFIG: "/nonexistent",
    })
    const { code } = await spawned.exit
    expect(code).toBe(1)
    expect(spawned.stderr()).toContain('BATCH_MAX_SIZE: got "abc"')
    expect(spawned.stderr()).toContain('DEBOUNCE_WINDOW_MS: got "-5"')
  })

  it("answers /healthz and /readyz, and on SIGTERM delivers changes still inside their debounce window, then exits 0", async () => {
    const healthPort = await freePort()
    const apiPort = await freePort()
    // Through a recording proxy: its bytes say when the change was sent to the controller, and the
    // controller's /metrics when it had taken it in.
    const proxy = await startRecordingProxy(kubeContext())
    const spawned = spawnController({
      KUBECONFIG: proxy.writeKubeconfig(mkdtempSync(join(tmpdir(), "process-flush-"))),
      INSTANCES_ENDPOINT: receiver.url,
      WATCH_RESOURCE_TYPES: "configmaps,namespaces",
      HEALTH_PROBE_BIND_ADDRESS: `127.0.0.1:${healthPort}`,
      API_BIND_ADDRESS: `127.0.0.1:${apiPort}`,
      DEBOUNCE_WINDOW_MS: "30000",
      DEBOUNCE_MAX_WAIT_MS: "60000",
      SHUTDOWN_TIMEOUT_MS: "10000",
    })
    const base = `http://127.0.0.1:${healthPort}`
    await eventually(
      async () => (await fetch(`${base}/healthz`).catch(() => undefined))?.status === 200,
      () => `no /healthz: ${spawned.stderr().slice(-2000)}`,
    )
    await eventually(
      async () => (await fetch(`${base}/readyz`)).status === 200,
      () => `never ready: ${spawned.stderr().slice(-2000)}`,
    )
    const detail = (await (await fetch(`${base}/readyz?verbose`)).json()) as {
      ready: boolean
      types: Array<{ type: string }>
    }
    expect(detail.ready).toBe(true)
    expect(detail.types.map((t) => t.type).sort()).toEqual(["configmaps", "namespaces"])

    const ns = await createNamespace("process-flush")
    expectStatus(
      await adminRequest("POST", `/api/v1/namespaces/${ns}/configmaps`, { metadata: { name: "late" } }),
      201,
    )
    const id = `${ns}/v1/ConfigMap/late`
    // Taken in (the controller counted every configmap event up to this one), but its 30 s
    // debounce window is far from over.
    const apiUrl = `http://127.0.0.1:${apiPort}`
    await eventually(
      async () => {
        const events = watchEvents(proxy, "/api/v1/configmaps")
        const position = events.findIndex((e) => e.namespace === ns && e.name === "late") + 1
        return position > 0 && (await changesTakenIn(apiUrl, "configmaps")) >= position
      },
      () => "change not taken in",
    )
    expect(receiver.state.has(id)).toBe(false)
    const signalledAt = Date.now()
    spawned.child.kill("SIGTERM")
    const { code } = await spawned.exit
    const tookMs = Date.now() - signalledAt
    expect(code).toBe(0)
    expect(receiver.state.has(id)).toBe(true)
    // How long it takes is the benchmark's business; here: it flushed and exited 0.
    console.log(`SIGTERM to exit: ${tookMs} ms`)
    await proxy.close()
    await deleteNamespace(ns)
  })

  it("serves /metrics in Prometheus text format, and its counters match what the receiver got", async () => {
    const own = await startReceiver()
    const apiPort = await freePort()
    const spawned = spawnController({
      KUBECONFIG: kubeContext().adminKubeconfig,
      INSTANCES_ENDPOINT: own.url,
      WATCH_RESOURCE_TYPES: "configmaps",
      HEALTH_PROBE_BIND_ADDRESS: `127.0.0.1:${await freePort()}`,
      API_BIND_ADDRESS: `127.0.0.1:${apiPort}`,
      DEBOUNCE_WINDOW_MS: "100",
      BATCH_FLUSH_INTERVAL_MS: "50",
    })
    const ns = await createNamespace("process-metrics")
    for (const name of ["a", "b", "c"]) {
      expectStatus(
        await adminRequest("POST", `/api/v1/namespaces/${ns}/configmaps`, { metadata: { name } }),
        201,
      )
    }
    const ids = ["a", "b", "c"].map((name) => `${ns}/v1/ConfigMap/${name}`)
    await eventually(
      () => ids.every((id) => own.state.has(id)),
      () => `not synced: ${spawned.stderr().slice(-1500)}`,
    )
    expectStatus(await adminRequest("DELETE", `/api/v1/namespaces/${ns}/configmaps/c`), 200)
    await eventually(
      () => !own.state.has(ids[2]!),
      () => "delete not synced",
    )

    const scrape = async () => {
      const response = await fetch(`http://127.0.0.1:${apiPort}/metrics`)
      expect(response.headers.get("content-type")).toContain("text/plain")
      return parsePrometheusText(await response.text())
    }
    const acked = own.requests.filter((r) => r.answer.kind === "status" && r.answer.status === 200)
    const samples = await scrape()
    expect(sampleValue(samples, "vectordb_sync_upserts_sent_total", { pipeline: "instances" })).toBe(
      acked.reduce((n, r) => n + r.payload.upserts.length, 0),
    )
    expect(sampleValue(samples, "vectordb_sync_deletes_sent_total", { pipeline: "instances" })).toBe(
      acked.reduce((n, r) => n + r.payload.deletes.length, 0),
    )
    expect(
      sampleValue(samples, "vectordb_sync_requests_total", { pipeline: "instances", outcome: "success" }),
    ).toBe(acked.length)
    expect(sampleValue(samples, "vectordb_sync_send_duration_seconds_count")).toBe(own.requests.length)
    expect(sampleValue(samples, "vectordb_sync_watched_types")).toBe(1)
    expect(sampleValue(samples, "vectordb_sync_pending_entries")).toBe(0)
    expect(
      sampleValue(samples, "vectordb_sync_watch_events_total", { type: "configmaps", op: "Delete" }),
    ).toBeGreaterThanOrEqual(1)
    expect(sampleValue(samples, "vectordb_sync_last_success_timestamp_seconds")).toBeGreaterThan(
      Date.now() / 1000 - 60,
    )

    spawned.child.kill("SIGTERM")
    expect((await spawned.exit).code).toBe(0)
    await own.close()
    await deleteNamespace(ns)
  })

  it("a second SIGTERM during a blocked final flush exits at once", async () => {
    const hanging = await startReceiver()
    hanging.script = () => ({ kind: "hang" })
    const spawned = spawnController({
      KUBECONFIG: kubeContext().adminKubeconfig,
      INSTANCES_ENDPOINT: hanging.url,
      WATCH_RESOURCE_TYPES: "namespaces",
      HEALTH_PROBE_BIND_ADDRESS: `127.0.0.1:${await freePort()}`,
      API_BIND_ADDRESS: `127.0.0.1:${await freePort()}`,
      DEBOUNCE_WINDOW_MS: "0",
      SHUTDOWN_TIMEOUT_MS: "20000",
    })
    // The initial list is sent, and hangs at the receiver: the flush has something to wait for.
    await eventually(
      () => hanging.requests.length > 0,
      () => `nothing sent: ${spawned.stderr().slice(-1500)}`,
    )
    spawned.child.kill("SIGTERM")
    // The signal interrupts the hung request and the final flush sends the batch again: its arrival
    // shows the first SIGTERM was handled, and the process is still there, blocked in the flush.
    await eventually(
      () => hanging.requests.length >= 2,
      () => `no final flush after the first SIGTERM: ${spawned.stderr().slice(-1500)}`,
    )
    expect(spawned.child.exitCode).toBe(null)
    const secondAt = Date.now()
    spawned.child.kill("SIGTERM")
    const { code } = await spawned.exit
    // 143, not the 0 of a flush that ended (delivered or timed out): the second signal ended it.
    expect(code).toBe(143)
    console.log(`second SIGTERM to exit: ${Date.now() - secondAt} ms`)
    await hanging.close()
  })

  it("sends the bearer token from ENDPOINT_TOKEN_FILE, re-reads it when rotated, and never logs it", async () => {
    const dir = mkdtempSync(join(tmpdir(), "token-"))
    const tokenFile = join(dir, "token")
    writeFileSync(tokenFile, "first-secret-token\n")
    const own = await startReceiver()
    const spawned = spawnController({
      KUBECONFIG: kubeContext().adminKubeconfig,
      INSTANCES_ENDPOINT: own.url,
      ENDPOINT_TOKEN_FILE: tokenFile,
      WATCH_RESOURCE_TYPES: "configmaps",
      HEALTH_PROBE_BIND_ADDRESS: `127.0.0.1:${await freePort()}`,
      API_BIND_ADDRESS: `127.0.0.1:${await freePort()}`,
      DEBOUNCE_WINDOW_MS: "100",
      LOG_LEVEL: "debug",
    })
    await eventually(
      () => own.requests.length > 0,
      () => `nothing sent: ${spawned.stderr().slice(-1500)}`,
    )
    expect(own.requests[0]!.headers.authorization).toBe("Bearer first-secret-token")

    writeFileSync(tokenFile, "second-secret-token\n")
    const ns = await createNamespace("process-token")
    expectStatus(
      await adminRequest("POST", `/api/v1/namespaces/${ns}/configmaps`, { metadata: { name: "x" } }),
      201,
    )
    await eventually(
      () => own.state.has(`${ns}/v1/ConfigMap/x`),
      () => "change not sent",
    )
    expect(own.requests.at(-1)!.headers.authorization).toBe("Bearer second-secret-token")

    spawned.child.kill("SIGTERM")
    expect((await spawned.exit).code).toBe(0)
    for (const output of [spawned.stdout(), spawned.stderr()]) {
      expect(output).not.toContain("first-secret-token")
      expect(output).not.toContain("second-secret-token")
    }
    await own.close()
    await deleteNamespace(ns)
  })

  it("trusts an HTTPS receiver through ENDPOINT_CA_FILE, and retries (sends nothing) without it", async () => {
    const dir = mkdtempSync(join(tmpdir(), "receiver-ca-"))
    const pki = await makePki(dir, "nobody")
    const secure = await startReceiver({
      tls: { cert: readFileSync(pki.serving.certFile), key: readFileSync(pki.serving.keyFile) },
    })
    const env = (extra: Record<string, string>) => ({
      KUBECONFIG: kubeContext().adminKubeconfig,
      INSTANCES_ENDPOINT: secure.url,
      WATCH_RESOURCE_TYPES: "namespaces",
      DEBOUNCE_WINDOW_MS: "0",
      RETRY_MAX_BACKOFF_MS: "1000",
      ...extra,
    })
    const untrustingApi = await freePort()
    const untrusting = spawnController(
      env({
        HEALTH_PROBE_BIND_ADDRESS: `127.0.0.1:${await freePort()}`,
        API_BIND_ADDRESS: `127.0.0.1:${untrustingApi}`,
      }),
    )
    // It tried, failed to trust the receiver, and put the batch back for another attempt.
    await eventually(
      async () => {
        const text = await fetch(`http://127.0.0.1:${untrustingApi}/metrics`).then(
          (r) => r.text(),
          () => "",
        )
        const samples = parsePrometheusText(text)
        return (
          sampleValue(samples, "vectordb_sync_requests_total", { outcome: "unavailable" }) > 0 &&
          sampleValue(samples, "vectordb_sync_retries_total") > 0
        )
      },
      () => `no failed attempt: ${untrusting.stderr().slice(-1500)}`,
    )
    expect(secure.requests).toHaveLength(0)
    untrusting.child.kill("SIGKILL")

    const trusting = spawnController(
      env({
        ENDPOINT_CA_FILE: pki.caFile,
        HEALTH_PROBE_BIND_ADDRESS: `127.0.0.1:${await freePort()}`,
        API_BIND_ADDRESS: `127.0.0.1:${await freePort()}`,
      }),
    )
    await eventually(
      () => secure.state.has("_cluster/v1/Namespace/default"),
      () => `not delivered over HTTPS: ${trusting.stderr().slice(-1500)}`,
    )
    trusting.child.kill("SIGTERM")
    expect((await trusting.exit).code).toBe(0)
    await secure.close()
  })

  it("exits 1 naming ENDPOINT_CA_FILE when the bundle cannot be read", async () => {
    const spawned = spawnController({
      KUBECONFIG: kubeContext().adminKubeconfig,
      INSTANCES_ENDPOINT: "https://127.0.0.1:1/sync",
      ENDPOINT_CA_FILE: "/nonexistent/ca.pem",
      HEALTH_PROBE_BIND_ADDRESS: `127.0.0.1:${await freePort()}`,
      API_BIND_ADDRESS: `127.0.0.1:${await freePort()}`,
    })
    const { code } = await spawned.exit
    expect(code).toBe(1)
    expect(spawned.stderr()).toContain("ENDPOINT_CA_FILE")
  })

  it("dry run: every stdout line is one payload of the contract, logs go to stderr", async () => {
    const spawned = spawnController({
      KUBECONFIG: kubeContext().adminKubeconfig,
      WATCH_RESOURCE_TYPES: "namespaces",
      HEALTH_PROBE_BIND_ADDRESS: `127.0.0.1:${await freePort()}`,
      API_BIND_ADDRESS: `127.0.0.1:${await freePort()}`,
      DEBOUNCE_WINDOW_MS: "0",
      LOG_FORMAT: "pretty",
    })
    await eventually(
      () => spawned.stdout().includes("_cluster/v1/Namespace/default"),
      () => spawned.stderr(),
    )
    spawned.child.kill("SIGTERM")
    expect((await spawned.exit).code).toBe(0)
    const lines = spawned.stdout().trim().split("\n")
    for (const line of lines) {
      const payload = Schema.decodeUnknownSync(SyncPayload)(JSON.parse(line))
      expect(payload.upserts.length + payload.deletes.length).toBeGreaterThan(0)
    }
    // The logs went somewhere, and it was not stdout.
    expect(spawned.stderr()).not.toBe("")
  })
})
