/**
 * Leader election between two real controller processes (`node dist/main.js`, LEADER_ELECTION=true)
 * against the real control plane, each sending to its own receiver so that the receivers tell who
 * sent what and when: exactly one sends; SIGKILL of the leader hands over within the lease duration;
 * SIGTERM releases the lease so that the standby takes over at once; a leader that loses its lease
 * exits at once without its final flush; never do both send at the same time.
 */
import { randomBytes } from "node:crypto"
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest"
import { adminRequest, createNamespace, deleteNamespace, expectStatus, kubeContext } from "../kube/harness.js"
import { eventually } from "../support/controller.js"
import { buildDist, freePort, killAll, type Spawned, spawnController } from "../support/process.js"
import { type Receiver, startReceiver } from "../support/Receiver.js"

interface Replica extends Spawned {
  readonly name: string
  readonly receiver: Receiver
  readonly healthz: string
}

interface Timing {
  readonly leaseMs: number
  readonly renewDeadlineMs: number
  readonly retryPeriodMs: number
}

// Short enough for a quick test, long enough that a leader starved of CPU at start (2 shared cores)
// still renews within the deadline.
const short: Timing = { leaseMs: 5_000, renewDeadlineMs: 4_000, retryPeriodMs: 500 }

const receivers: Array<Receiver> = []
let namespace: string

const startReplica = async (
  name: string,
  leaseId: string,
  timing: Timing,
  extra: Record<string, string> = {},
): Promise<Replica> => {
  const receiver = await startReceiver()
  receivers.push(receiver)
  const healthPort = await freePort()
  const spawned = spawnController({
    KUBECONFIG: kubeContext().adminKubeconfig,
    INSTANCES_ENDPOINT: receiver.url,
    WATCH_RESOURCE_TYPES: "configmaps",
    HEALTH_PROBE_BIND_ADDRESS: `127.0.0.1:${healthPort}`,
    API_BIND_ADDRESS: `127.0.0.1:${await freePort()}`,
    DEBOUNCE_WINDOW_MS: "100",
    DEBOUNCE_MAX_WAIT_MS: "1000",
    BATCH_FLUSH_INTERVAL_MS: "0",
    RETRY_INITIAL_BACKOFF_MS: "100",
    RETRY_MAX_BACKOFF_MS: "1000",
    SHUTDOWN_TIMEOUT_MS: "10000",
    LOG_LEVEL: "debug",
    LEADER_ELECTION: "true",
    LEADER_ELECTION_ID: leaseId,
    LEADER_ELECTION_NAMESPACE: namespace,
    LEADER_ELECTION_LEASE_DURATION_MS: String(timing.leaseMs),
    LEADER_ELECTION_RENEW_DEADLINE_MS: String(timing.renewDeadlineMs),
    LEADER_ELECTION_RETRY_PERIOD_MS: String(timing.retryPeriodMs),
    POD_NAME: name,
    ...extra,
  })
  return { ...spawned, name, receiver, healthz: `http://127.0.0.1:${healthPort}` }
}

const leasePath = (id: string) => `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases/${id}`

interface LeaseSpec {
  holderIdentity?: string
  leaseDurationSeconds?: number
  leaseTransitions?: number
  renewTime?: string
}

const leaseSpec = async (id: string): Promise<LeaseSpec | undefined> => {
  const response = await adminRequest("GET", leasePath(id))
  return response.status === 200 ? ((response.json as { spec?: LeaseSpec }).spec ?? {}) : undefined
}

const holderOf = async (id: string): Promise<string | undefined> => (await leaseSpec(id))?.holderIdentity

/** The lease's renewTime (epoch ms; the API server keeps microseconds, cut to milliseconds here). */
const renewedAt = async (id: string): Promise<number> => {
  const text = (await leaseSpec(id))?.renewTime
  if (text === undefined) throw new Error(`lease ${id} has no renewTime`)
  return Date.parse(text.replace(/(\.\d{3})\d*Z$/, "$1Z"))
}

/** When (epoch ms, from its JSON log) a replica logged that it leads. */
const ledAt = (r: Replica): number | undefined => {
  const line = r
    .stderr()
    .split("\n")
    .find((l) => l.includes('"message":"leading"'))
  return line === undefined ? undefined : Date.parse((JSON.parse(line) as { timestamp: string }).timestamp)
}

const tail = (r: Replica) => `${r.name}: ${r.stderr().slice(-3000)}`

const leading = (r: Replica) =>
  eventually(
    () => r.stderr().includes('"message":"leading"'),
    () => `${r.name} never led: ${tail(r)}`,
  )

const standingBy = (r: Replica) =>
  eventually(
    () => r.stderr().includes("standing by"),
    () => `${r.name} never stood by: ${tail(r)}`,
  )

/** Keeps one ConfigMap changing every 150 ms, so that a leader always has something to send. */
const churn = () => {
  let stopped = false
  let n = 0
  const name = `churn-${randomBytes(3).toString("hex")}`
  const done = (async () => {
    expectStatus(
      await adminRequest("POST", `/api/v1/namespaces/${namespace}/configmaps`, {
        metadata: { name, labels: { n: "0" } },
      }),
      201,
    )
    while (!stopped) {
      n += 1
      await adminRequest(
        "PATCH",
        `/api/v1/namespaces/${namespace}/configmaps/${name}`,
        { metadata: { labels: { n: String(n) } } },
        { contentType: "application/merge-patch+json" },
      )
      await new Promise((resolve) => setTimeout(resolve, 150))
    }
  })()
  return {
    stop: async () => {
      stopped = true
      await done
    },
  }
}

const times = (r: Receiver) => r.requests.map((q) => q.at)

beforeAll(async () => {
  buildDist()
  namespace = await createNamespace("leader-election")
}, 120_000)

afterEach(() => killAll())

afterAll(async () => {
  for (const receiver of receivers) await receiver.close()
  if (namespace !== undefined) await deleteNamespace(namespace)
})

describe("leader election between two controller processes", () => {
  it("exactly one sends; SIGKILL of the leader hands over within the lease duration; never both", async () => {
    const leaseId = `sync-${randomBytes(3).toString("hex")}`
    const a = await startReplica("replica-a", leaseId, short)
    await leading(a)
    const b = await startReplica("replica-b", leaseId, short)
    await standingBy(b)
    expect(await holderOf(leaseId)).toMatch(/^replica-a_/)

    // A second standby stops at once on SIGTERM and never touched the lease.
    const c = await startReplica("replica-c", leaseId, short)
    await standingBy(c)
    const cSignalled = Date.now()
    c.child.kill("SIGTERM")
    const cExit = await c.exit
    expect(cExit.code).toBe(0)
    console.log(`standby SIGTERM → exit after ${cExit.at - cSignalled} ms`)
    expect(c.stderr()).not.toContain("released the leader-election lease")
    expect(await holderOf(leaseId)).toMatch(/^replica-a_/)

    // The standby is alive and says what it is.
    const healthz = await fetch(`${b.healthz}/healthz`)
    expect(healthz.status).toBe(200)
    const readyz = await fetch(`${b.healthz}/readyz`)
    expect(readyz.status).toBe(200)
    expect(await readyz.text()).toContain("standby")

    const changes = churn()
    try {
      await eventually(
        () => a.receiver.requests.length >= 5,
        () => `the leader sent too little: ${tail(a)}`,
      )
      // The standby sends nothing while the leader lives: checked below, after the takeover, as
      // "every request of the old leader came before the first one of the new leader".
      expect(b.receiver.requests).toEqual([])

      const killedAt = Date.now()
      a.child.kill("SIGKILL")
      await a.exit
      // The dead leader's last renewal (a renewal still in flight could only make it later).
      const lastRenewal = await renewedAt(leaseId)
      await eventually(
        () => b.receiver.requests.length > 0,
        () => `the standby never took over: ${tail(b)}`,
        short.leaseMs + 10_000,
      )
      const firstSend = b.receiver.requests[0]!.at
      const takeoverMs = firstSend - killedAt
      const acquiredAt = ledAt(b)
      expect(acquiredAt).toBeDefined()
      console.log(
        `SIGKILL → standby leads after ${acquiredAt! - killedAt} ms, first request after ${takeoverMs} ms (lease ${short.leaseMs} ms, retry ${short.retryPeriodMs} ms)`,
      )
      // Not before the lease expired: the standby judges expiry from when it saw the last renewal,
      // which is no earlier than the renewal itself. (How soon after the expiry it leads is a
      // figure for the benchmark, not a bound for a shared machine.)
      expect(acquiredAt!).toBeGreaterThanOrEqual(lastRenewal + short.leaseMs)
      // Never both: every request of the old leader came before the first one of the new leader.
      expect(Math.max(...times(a.receiver))).toBeLessThan(firstSend)
      expect(await holderOf(leaseId)).toMatch(/^replica-b_/)
      expect((await leaseSpec(leaseId))?.leaseTransitions).toBe(1)
      // and the new leader keeps the changes coming
      const count = b.receiver.requests.length
      await eventually(
        () => b.receiver.requests.length > count + 2,
        () => `the new leader stopped sending: ${tail(b)}`,
      )
    } finally {
      await changes.stop()
    }
    b.child.kill("SIGTERM")
    expect((await b.exit).code).toBe(0)
  })

  it("SIGTERM of the leader flushes, releases the lease, and the standby takes over long before the lease would expire", async () => {
    const leaseId = `sync-${randomBytes(3).toString("hex")}`
    // A long lease: a takeover through expiry would take ≥ 10 s.
    const slow: Timing = { leaseMs: 10_000, renewDeadlineMs: 8_000, retryPeriodMs: 500 }
    const a = await startReplica("replica-a", leaseId, slow)
    await leading(a)
    const b = await startReplica("replica-b", leaseId, slow)
    await standingBy(b)

    const changes = churn()
    try {
      await eventually(
        () => a.receiver.requests.length >= 5,
        () => `the leader sent too little: ${tail(a)}`,
      )
      // The leader renews until it releases, so a takeover by expiry could not come before this
      // renewal plus the lease duration.
      const renewalBeforeSignal = await renewedAt(leaseId)
      const signalledAt = Date.now()
      a.child.kill("SIGTERM")
      const { code, at: exitedAt } = await a.exit
      expect(code).toBe(0)
      expect(a.stderr()).toContain("released the leader-election lease")
      await eventually(
        () => b.receiver.requests.length > 0,
        () => `the standby never took over: ${tail(b)}`,
      )
      const firstSend = b.receiver.requests[0]!.at
      console.log(
        `SIGTERM → leader exited after ${exitedAt - signalledAt} ms → standby's first request ${firstSend - exitedAt} ms later (lease ${slow.leaseMs} ms)`,
      )
      // Through the release, not the expiry.
      const acquiredAt = ledAt(b)
      expect(acquiredAt).toBeDefined()
      expect(acquiredAt!).toBeLessThan(renewalBeforeSignal + slow.leaseMs)
      // Never both: the old leader's final flush came before the new leader's first request.
      expect(Math.max(...times(a.receiver))).toBeLessThan(firstSend)
      expect(await holderOf(leaseId)).toMatch(/^replica-b_/)
    } finally {
      await changes.stop()
    }
    b.child.kill("SIGTERM")
    expect((await b.exit).code).toBe(0)
  })

  it("a leader frozen past its lease (SIGSTOP) exits 1 on resuming and sends nothing more; the standby took over meanwhile", async () => {
    const leaseId = `sync-${randomBytes(3).toString("hex")}`
    // A debounce window longer than the churn period: a's pending batch always comes due while it
    // is frozen, so that on waking up it has something it must not send.
    const a = await startReplica("replica-a", leaseId, short, { DEBOUNCE_WINDOW_MS: "400" })
    await leading(a)
    const b = await startReplica("replica-b", leaseId, short)
    await standingBy(b)
    const changes = churn()
    try {
      await eventually(
        () => a.receiver.requests.length >= 5,
        () => `the leader sent too little: ${tail(a)}`,
      )
      const stoppedAt = Date.now()
      a.child.kill("SIGSTOP")
      await eventually(
        () => b.receiver.requests.length > 0,
        () => `the standby never took over: ${tail(b)}`,
        short.leaseMs + 10_000,
      )
      // Let the frozen leader's timers (debounce, batch, renew) all come due while it sleeps.
      await new Promise((resolve) => setTimeout(resolve, 1_000))
      const resumedAt = Date.now()
      a.child.kill("SIGCONT")
      const { code, at } = await a.exit
      console.log(
        `SIGSTOP → standby's first request after ${b.receiver.requests[0]!.at - stoppedAt} ms; SIGCONT → old leader exited ${at - resumedAt} ms later with code ${code}`,
      )
      expect(code).toBe(1)
      expect(a.stderr()).toContain("leadership lost")
      // Nothing sent by the old leader after it woke up.
      expect(a.receiver.requests.filter((q) => q.at >= resumedAt)).toEqual([])
    } finally {
      await changes.stop()
    }
    b.child.kill("SIGTERM")
    expect((await b.exit).code).toBe(0)
  })

  it("a leader whose lease is taken exits 1 at once and does not flush what is pending", async () => {
    const leaseId = `sync-${randomBytes(3).toString("hex")}`
    const a = await startReplica("replica-a", leaseId, short, {
      DEBOUNCE_WINDOW_MS: "30000",
      DEBOUNCE_MAX_WAIT_MS: "60000",
    })
    await leading(a)
    await eventually(
      async () => (await fetch(`${a.healthz}/readyz`).catch(() => undefined))?.status === 200,
      () => `never ready: ${tail(a)}`,
    )
    expectStatus(
      await adminRequest("POST", `/api/v1/namespaces/${namespace}/configmaps`, {
        metadata: { name: "pending" },
      }),
      201,
    )
    const id = `${namespace}/v1/ConfigMap/pending`
    await eventually(
      () => a.stderr().includes(id),
      () => `change not observed: ${tail(a)}`,
    )
    // Somebody else takes the lease (as a standby would after an expiry we did not notice).
    const current = await adminRequest("GET", leasePath(leaseId))
    const lease = current.json as { spec: Record<string, unknown> }
    const now = new Date().toISOString().replace(/\.(\d{3})Z$/, ".$1000Z")
    const takenAt = Date.now()
    expectStatus(
      await adminRequest("PUT", leasePath(leaseId), {
        ...lease,
        spec: { ...lease.spec, holderIdentity: "intruder", acquireTime: now, renewTime: now },
      }),
      200,
    )
    const { code, at } = await a.exit
    console.log(`lease taken → leader exited ${at - takenAt} ms later with code ${code}`)
    expect(code).toBe(1)
    expect(a.stderr()).toContain("leadership lost")
    // The pending change was not flushed: a non-leader must not send.
    expect(a.receiver.state.has(id)).toBe(false)
    expect(a.receiver.requests.every((q) => q.at < at)).toBe(true)
    expect(await holderOf(leaseId)).toBe("intruder")
  })
})
