/**
 * Faults of the controller process itself, on the real binary (`node dist/main.js`): SIGKILL and a
 * restart (what a crash cannot know), SIGTERM in the middle of churn (everything observed is
 * delivered), and every configuration variable malformed at once (exit 1, one line each).
 */
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
  freePort,
  killAll,
  logLines,
  messageOf,
  observed,
  type Spawned,
  spawnController,
} from "../../support/process.js"
import { type Receiver, startReceiver } from "../../support/Receiver.js"

beforeAll(() => buildDist(), 120_000)
afterAll(() => killAll())

interface Started extends Spawned {
  readonly apiUrl: string
}

const startProcess = async (receiver: Receiver, extra: Record<string, string> = {}): Promise<Started> => {
  const healthPort = await freePort()
  const apiPort = await freePort()
  const spawned = spawnController({
    KUBECONFIG: kubeContext().adminKubeconfig,
    INSTANCES_ENDPOINT: receiver.url,
    WATCH_RESOURCE_TYPES: "configmaps",
    HEALTH_PROBE_BIND_ADDRESS: `127.0.0.1:${healthPort}`,
    API_BIND_ADDRESS: `127.0.0.1:${apiPort}`,
    DEBOUNCE_WINDOW_MS: "200",
    DEBOUNCE_MAX_WAIT_MS: "2000",
    BATCH_FLUSH_INTERVAL_MS: "100",
    RETRY_INITIAL_BACKOFF_MS: "100",
    RETRY_MAX_BACKOFF_MS: "1000",
    SHUTDOWN_TIMEOUT_MS: "10000",
    ...extra,
  })
  await eventually(
    async () => (await fetch(`http://127.0.0.1:${healthPort}/readyz`).catch(() => undefined))?.status === 200,
    () => `never ready: ${spawned.stderr().slice(-2_000)}`,
  )
  return { ...spawned, apiUrl: `http://127.0.0.1:${apiPort}` }
}

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
    const response = await fetch(`${second.apiUrl}/api/v1/resync`, { method: "POST" })
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

  it("SIGTERM during churn: every change observed before exit reaches the receiver before the process exits", async () => {
    const receiver = await startReceiver()
    // A long debounce window: at the signal, most observed changes are still waiting in it.
    const proc = await startProcess(receiver, {
      LOG_LEVEL: "debug",
      DEBOUNCE_WINDOW_MS: "3000",
      DEBOUNCE_MAX_WAIT_MS: "6000",
    })
    // Created after the controller is ready, so that every write is one watch event ("observed").
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
    await new Promise((r) => setTimeout(r, 2_000))
    const signalledAt = Date.now()
    const observedAtSignal = observed(proc.stderr()).length
    proc.child.kill("SIGTERM")
    // Writes go on for a while after the signal, as they would in a real cluster.
    await new Promise((r) => setTimeout(r, 300))
    running = false
    await Promise.all(workers)
    const { code } = await proc.exit
    const exitMs = Date.now() - signalledAt
    expect(code).toBe(0)

    const prefix = `${ns}/v1/ConfigMap/cm-`
    const seen = observed(proc.stderr()).filter((o) => o.id.startsWith(prefix))
    expect(observedAtSignal).toBeGreaterThan(40)
    const problems: Array<string> = []
    let checked = 0
    for (const name of names) {
      const id = `${ns}/v1/ConfigMap/${name}`
      const ops = seen.filter((o) => o.id === id)
      if (ops.length === 0) continue
      const log = writes.get(name)!
      // One watch event per write, in order: the n-th observation is the n-th write.
      ops.forEach((o, i) => {
        if (log[i]?.op !== o.op)
          problems.push(`${id}: observation ${i} is ${o.op}, write ${i} is ${log[i]?.op}`)
      })
      const last = log[ops.length - 1]!
      const got = receiver.state.get(id)
      checked++
      if (last.op === "Delete") {
        if (got !== undefined) problems.push(`${id}: deleted last, receiver still has seq ${got.labels.seq}`)
      } else if (got?.labels.seq !== String(last.seq)) {
        problems.push(`${id}: last observed seq ${last.seq}, receiver has ${got?.labels.seq ?? "nothing"}`)
      }
    }
    const lateRequests = receiver.requests.filter((r) => r.at >= signalledAt).length
    console.log(
      `SIGTERM during churn: ${seen.length} changes observed (${observedAtSignal} before the signal), ` +
        `${checked} objects checked, ${lateRequests} requests after the signal, exit 0 after ${exitMs} ms`,
    )
    expect(problems).toEqual([])
    expect(checked).toBe(names.length)
    // The final flush did the work: entries still inside their 3 s window went out after the signal.
    expect(lateRequests).toBeGreaterThan(0)
    expect(logLines(proc.stderr()).some((l) => messageOf(l).startsWith("shutdown timeout"))).toBe(false)
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
      CHECKPOINT: "yes",
      CHECKPOINT_NAME: "Checkpoint_Name",
      CHECKPOINT_PART_BYTES: "1MiB",
    }
    const unmalformable = ["ENDPOINT_TOKEN_FILE", "ENDPOINT_CA_FILE"]
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
    // Nothing started: no log line of a running controller.
    expect(spawned.stderr()).not.toContain("starting k8s-vectordb-sync")
    expect(spawned.stdout()).toBe("")
  })
})
