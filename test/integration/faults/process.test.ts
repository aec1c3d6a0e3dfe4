/**
 * Faults of the controller process itself, on the real binary (`node dist/main.js`): SIGKILL and a
 * restart (what a crash cannot know), SIGTERM in the middle of churn (everything observed is
 * delivered), and every configuration variable malformed at once (exit 1, one line each).
 */
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { configReference } from "../../../src/config/Config.js"
import { createNamespace, deleteNamespace, kubeContext } from "../../kube/harness.js"
import { eventually } from "../../support/controller.js"
import { differences } from "../../support/convergence.js"
import {
  backgroundChurn,
  configMaps,
  converge,
  mustCreate,
  patchMeta,
  pool,
  remove,
} from "../../support/faults/churn.js"
import {
  buildDist,
  killAll,
  logLines,
  type Started,
  spawnController,
  startReady,
} from "../../support/process.js"
import { parsePrometheusText, sampleValue } from "../../support/prometheus.js"
import { type Receiver, startReceiver } from "../../support/Receiver.js"
import { startRecordingProxy } from "../../support/RecordingProxy.js"
import { changesTakenIn, type TappedEvent, watchEvents } from "../../support/WatchTap.js"

const RESYNC_TOKEN = "process-test-resync-token"
let resyncTokenFile: string

beforeAll(() => {
  resyncTokenFile = join(mkdtempSync(join(tmpdir(), "resync-token-")), "token")
  writeFileSync(resyncTokenFile, RESYNC_TOKEN)
  buildDist()
}, 120_000)
afterAll(() => killAll())

const startProcess = (receiver: Receiver, extra: Record<string, string> = {}): Promise<Started> =>
  startReady(receiver.url, { RESYNC_TOKEN_FILE: resyncTokenFile, ...extra })

describe("controller process faults", () => {
  it("SIGKILL and restart with CHECKPOINT=false: converges for everything that exists; deletes made while it was dead stay downstream, and a resync cannot fix that", async () => {
    // Without the checkpoint (test/integration/checkpoint.test.ts shows the orphans deleted with it).
    const withoutCheckpoint = { CHECKPOINT: "false" }
    const receiver = await startReceiver()
    const first = await startProcess(receiver, withoutCheckpoint)
    const ns = await createNamespace("fault-sigkill")
    const names = Array.from({ length: 40 }, (_, i) => `cm-${i}`)
    await pool(
      8,
      names.map((name) => () => mustCreate(configMaps, ns, name, { seq: "0" })),
    )
    await converge(receiver, [configMaps], [ns])

    const churn = backgroundChurn(configMaps, ns, names.slice(0, 30))
    await new Promise((r) => setTimeout(r, 1_000))
    first.child.kill("SIGKILL")
    expect((await first.exit).signal).toBe("SIGKILL")
    // While no controller runs: deletes of objects the receiver holds, creates and updates.
    const deletedWhileDead = names.slice(30, 35)
    await Promise.all(deletedWhileDead.map((name) => remove(configMaps, ns, name)))
    await Promise.all([0, 1, 2].map((i) => mustCreate(configMaps, ns, `while-dead-${i}`)))
    await Promise.all(names.slice(35, 40).map((name) => patchMeta(configMaps, ns, name, { seq: "99" })))
    await new Promise((r) => setTimeout(r, 500))
    await churn.stop()

    const restartedAt = Date.now()
    const second = await startProcess(receiver, withoutCheckpoint)
    // The documented limitation, asserted exactly: everything that exists converges, and the only
    // differences left are the objects deleted while no controller was running. The new process
    // never saw them, and the protocol only pushes changes: nobody can tell the receiver to drop them.
    const expected = deletedWhileDead.map((name) => `extra ${ns}/v1/ConfigMap/${name}`).sort()
    let left: ReadonlyArray<string> = []
    await eventually(
      async () => {
        left = [...(await differences(receiver, [configMaps], ns))].sort()
        return JSON.stringify(left) === JSON.stringify(expected)
      },
      () => `differences after restart: ${left.join(", ")}`,
    )
    const convergedMs = Date.now() - restartedAt
    expect(receiver.state.get(`${ns}/v1/ConfigMap/cm-35`)?.labels.seq).toBe("99")
    expect(receiver.state.has(`${ns}/v1/ConfigMap/while-dead-0`)).toBe(true)

    // POST /api/v1/resync relists and re-sends every object, but deletes only ids it knows are gone.
    const requestsBefore = receiver.requests.length
    const response = await fetch(`${second.apiUrl}/api/v1/resync`, {
      method: "POST",
      headers: { authorization: `Bearer ${RESYNC_TOKEN}` },
    })
    expect(response.status).toBe(200)
    const outcome = (await response.json()) as { upserts: number; deletes: number; status: string }
    expect(outcome.status).toBe("ok")
    expect(outcome.deletes).toBe(0)
    await eventually(
      () =>
        receiver.requests
          .slice(requestsBefore)
          .some((r) => r.payload.upserts.some((u) => u.id === `${ns}/v1/ConfigMap/cm-0`)),
      () => "resync did not re-send",
    )
    // A marker created after the resync: a delete the resync queued would go out at once, before
    // the marker's debounced upsert, so once the marker is there, the orphans are known to stay.
    await mustCreate(configMaps, ns, "after-resync")
    await eventually(
      () => receiver.state.has(`${ns}/v1/ConfigMap/after-resync`),
      () => "the marker never arrived",
    )
    expect([...(await differences(receiver, [configMaps], ns))].sort()).toEqual(expected)
    console.log(
      `SIGKILL + restart: ready and converged (but for ${expected.length} known orphans) in ${convergedMs} ms; ` +
        `resync queued ${outcome.upserts} upserts, ${outcome.deletes} deletes; orphans remain`,
    )

    second.child.kill("SIGTERM")
    expect((await second.exit).code).toBe(0)
    await receiver.close()
    await deleteNamespace(ns)
  })

  it("SIGTERM during churn: every change taken in before exit reaches the receiver before the process exits", async () => {
    const receiver = await startReceiver()
    // The controller reads its watches through a recording proxy: the proxy's bytes say which events
    // it was sent, in order, and its /metrics how many of them it had taken in.
    const proxy = await startRecordingProxy(kubeContext())
    // A long debounce window: at the signal, most changes taken in are still waiting in it.
    const proc = await startProcess(receiver, {
      KUBECONFIG: proxy.writeKubeconfig(mkdtempSync(join(tmpdir(), "sigterm-"))),
      DEBOUNCE_WINDOW_MS: "3000",
      DEBOUNCE_MAX_WAIT_MS: "6000",
    })
    const tapped = () => watchEvents(proxy, "/api/v1/configmaps")
    // Every event of the stream (the streaming initial list included) is one change taken in: the
    // k-th event has been processed once the counter reaches k.
    await eventually(
      async () => (await changesTakenIn(proc.apiUrl, "configmaps")) === tapped().length,
      () => `the counter never matched the tapped stream (${tapped().length} events)`,
    )
    // Created after the controller is ready, so that every write is one watch event.
    const ns = await createNamespace("fault-sigterm")
    const names = Array.from({ length: 40 }, (_, i) => `cm-${i}`)
    type Write = { readonly op: "Upsert"; readonly seq: number } | { readonly op: "Delete" }
    const writes = new Map<string, Array<Write>>(names.map((name) => [name, []]))
    let running = true
    const workers = Array.from({ length: 4 }, async (_, w) => {
      const own = names.filter((_, i) => i % 4 === w)
      for (const name of own) {
        await mustCreate(configMaps, ns, name, { seq: "0" })
        writes.get(name)!.push({ op: "Upsert", seq: 0 })
      }
      for (let k = 0; running; k++) {
        const name = own[k % own.length]!
        const log = writes.get(name)!
        const last = log.at(-1)!
        if (last.op === "Delete") {
          const seq = log.length
          await mustCreate(configMaps, ns, name, { seq: String(seq) })
          log.push({ op: "Upsert", seq })
        } else if (k % 9 === 5) {
          if ((await remove(configMaps, ns, name)) !== 200) throw new Error(`delete ${name}`)
          log.push({ op: "Delete" })
        } else {
          const seq = log.length
          if ((await patchMeta(configMaps, ns, name, { seq: String(seq) })) !== 200)
            throw new Error(`patch ${name}`)
          log.push({ op: "Upsert", seq })
        }
      }
    })
    const ours = (e: TappedEvent) => e.namespace === ns && names.includes(e.name)
    // Churn until the controller has taken in a good share of it (its counter, not a log line).
    let takenIn = 0
    await eventually(
      async () => {
        takenIn = await changesTakenIn(proc.apiUrl, "configmaps")
        return tapped().slice(0, takenIn).filter(ours).length > 80
      },
      () => `too little taken in: ${takenIn}`,
    )
    // The last reading before the signal: everything up to the `takenIn`-th event was processed,
    // and some of it is still waiting (the final flush has work to do).
    const beforeSignal = parsePrometheusText(await (await fetch(`${proc.apiUrl}/metrics`)).text())
    takenIn = sampleValue(beforeSignal, "vectordb_sync_watch_events_total", { type: "configmaps" })
    const pendingAtSignal = sampleValue(beforeSignal, "vectordb_sync_pending_entries")
    const signalledAt = Date.now()
    proc.child.kill("SIGTERM")
    // Writes go on for a while after the signal, as they would in a real cluster.
    await new Promise((r) => setTimeout(r, 300))
    running = false
    await Promise.all(workers)
    const { code } = await proc.exit
    const exitMs = Date.now() - signalledAt
    expect(code).toBe(0)

    const events = tapped()
    // One watch event per write, in order: the n-th event of an object is its n-th write.
    const problems: Array<string> = []
    for (const name of names) {
      const seen = events.filter((e) => ours(e) && e.name === name)
      const log = writes.get(name)!
      seen.forEach((e, i) => {
        const write = log[i]
        const matches =
          write?.op === "Delete"
            ? e.type === "DELETED"
            : e.type !== "DELETED" && e.labels.seq === String(write?.seq)
        if (!matches)
          problems.push(
            `${name}: event ${i} is ${e.type} seq ${e.labels.seq}, write ${i} is ${JSON.stringify(write)}`,
          )
      })
    }
    expect(problems).toEqual([])
    // The receiver must hold, for every object, its state after some cut of the stream: a cut no
    // earlier than what was taken in before the signal, no later than what the proxy forwarded.
    const held = (name: string) => receiver.state.get(`${ns}/v1/ConfigMap/${name}`)?.labels.seq ?? null
    const state = new Map<string, string | null>(names.map((name) => [name, null]))
    const mismatched = () => names.filter((name) => state.get(name) !== held(name))
    const cuts: Array<number> = []
    let wrong = mismatched().length
    events.forEach((e, i) => {
      if (ours(e)) {
        const before = state.get(e.name) === held(e.name)
        state.set(e.name, e.type === "DELETED" ? null : (e.labels.seq ?? null))
        const after = state.get(e.name) === held(e.name)
        wrong += (before ? 1 : 0) - (after ? 1 : 0)
      }
      if (i + 1 >= takenIn && wrong === 0) cuts.push(i + 1)
    })
    const lateRequests = receiver.requests.filter((r) => r.at >= signalledAt).length
    console.log(
      `SIGTERM during churn: ${events.filter(ours).length} events of the test's objects, ${takenIn} changes ` +
        `taken in before the signal (${pendingAtSignal} ids pending), consistent cuts ${cuts[0]}..${cuts.at(-1)} ` +
        `of ${events.length}, ${lateRequests} requests after the signal, exit 0 after ${exitMs} ms`,
    )
    expect(
      cuts,
      `no cut of the stream matches the receiver; at the end: ${mismatched().join(", ")}`,
    ).not.toEqual([])
    // The final flush did the work: entries still inside their 3 s window went out after the signal.
    expect(pendingAtSignal).toBeGreaterThan(0)
    expect(lateRequests).toBeGreaterThan(0)
    await proxy.close()
    await receiver.close()
    await deleteNamespace(ns)
  })

  it("every configuration variable malformed at once: exit 1 and one line per variable, naming it", async () => {
    // A malformed value for every variable of the reference. The two file paths cannot be
    // malformed through the environment (only a NUL byte is invalid, and no environment holds one):
    // a missing file is not checked at start (see the README's Failure behaviour).
    const malformed: Record<string, string> = {
      INSTANCES_ENDPOINT: "not a url",
      REST_ENDPOINT: "ftp://example.invalid/sync",
      CAPABILITIES_ENDPOINT: "http://",
      DRY_RUN: "maybe",
      DEBOUNCE_WINDOW_MS: "-1",
      DEBOUNCE_MAX_WAIT_MS: "soon",
      BATCH_FLUSH_INTERVAL_MS: "1.5",
      BATCH_MAX_SIZE: "10001",
      RESYNC_INTERVAL_MIN: "99999999",
      SHUTDOWN_TIMEOUT_MS: "20s",
      SEND_TIMEOUT_MS: "0",
      RETRY_INITIAL_BACKOFF_MS: "fast",
      RETRY_MAX_BACKOFF_MS: "2147483648",
      WATCH_RESOURCE_TYPES: "deployments,Bad_Type!",
      EXCLUDE_RESOURCE_TYPES: "events;leases",
      API_BIND_ADDRESS: "8082",
      HEALTH_PROBE_BIND_ADDRESS: ":99999",
      LOG_LEVEL: "verbose",
      LOG_FORMAT: "xml",
      LEADER_ELECTION: "yes",
      LEADER_ELECTION_ID: "Not_A_Name",
      LEADER_ELECTION_NAMESPACE: "a.b",
      LEADER_ELECTION_LEASE_DURATION_MS: "-",
      LEADER_ELECTION_RENEW_DEADLINE_MS: "1e4",
      LEADER_ELECTION_RETRY_PERIOD_MS: "0x10",
      DISCOVERY_INTERVAL_MS: "999",
      LIST_CONCURRENCY: "0",
      WATCH_LIST: "sometimes",
      API_SERVER_MAX_CONNECTIONS: "many",
      RESYNC_AUTH: "basic",
      RESYNC_MIN_INTERVAL_MS: "1m",
      BATCH_MAX_BYTES: "5MiB",
      ANNOTATION_KEYS: "a/b/c",
      LABEL_KEYS: "app=web",
      WATCH_NAMESPACES: "Team_A",
      EXCLUDE_NAMESPACES: "dev-*,Prod",
      LABEL_SELECTOR: "app==web==x",
      CHECKPOINT: "yes",
      CHECKPOINT_NAME: "Checkpoint_Name",
      CHECKPOINT_PART_BYTES: "1MiB",
    }
    const unmalformable = [
      "ENDPOINT_TOKEN_FILE",
      "ENDPOINT_CA_FILE",
      "RESYNC_TOKEN_FILE",
      "ENDPOINT_HEADERS_FILE",
    ]
    // A variable added to the reference without a malformed value here fails this test.
    expect(configReference.map((v) => v.name).sort()).toEqual(
      [...Object.keys(malformed), ...unmalformable].sort(),
    )

    const spawned = spawnController({
      ...malformed,
      ENDPOINT_TOKEN_FILE: "/nonexistent/token",
      ENDPOINT_CA_FILE: "/nonexistent/ca.pem",
      KUBECONFIG: "/nonexistent/kubeconfig",
    })
    const { code } = await spawned.exit
    expect(code).toBe(1)
    const lines = spawned
      .stderr()
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => /^[A-Z_]+: got /.test(l))
    const named = lines.map((l) => l.slice(0, l.indexOf(":")))
    expect([...named].sort()).toEqual(Object.keys(malformed).sort())
    for (const [name, value] of Object.entries(malformed)) {
      const line = lines.find((l) => l.startsWith(`${name}: `))!
      expect(line).toContain(`got ${JSON.stringify(value)}, expected `)
    }
    expect(spawned.stderr()).toContain("invalid configuration:")
    // Nothing started: not one log line of a running controller.
    expect(logLines(spawned.stderr())).toEqual([])
    expect(spawned.stdout()).toBe("")
  })
})
