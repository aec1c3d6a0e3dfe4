/**
 * Leader election between two real controller processes (`node dist/main.js`, LEADER_ELECTION=true)
 * against the real control plane, each sending to its own receiver so that the receivers tell who
 * sent what and when: exactly one sends; SIGKILL of the leader hands over within the lease duration;
 * SIGTERM releases the lease so that the standby takes over at once; a leader that loses its lease
 * exits at once without its final flush; never do both send at the same time.
 */
import { randomBytes } from "node:crypto"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest"
import { adminRequest, createNamespace, deleteNamespace, expectStatus, kubeContext } from "../kube/harness.js"
import { eventually } from "../support/controller.js"
import { buildDist, freePort, killAll, type Spawned, spawnController } from "../support/process.js"
import { type ReceivedRequest, type Receiver, startReceiver } from "../support/Receiver.js"
import { startRecordingProxy } from "../support/RecordingProxy.js"
import { changesTakenIn, watchEvents } from "../support/WatchTap.js"

interface Replica extends Spawned {
  readonly name: string
  readonly receiver: Receiver
  /** What the receiver got from this replica (its own endpoint path when the receiver is shared). */
  readonly sent: () => ReadonlyArray<ReceivedRequest>
  readonly healthz: string
  readonly apiUrl: string
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
  shared?: Receiver,
): Promise<Replica> => {
  const receiver = shared ?? (await startReceiver())
  if (shared === undefined) receivers.push(receiver)
  const path = `/sync/${name}`
  const healthPort = await freePort()
  const apiPort = await freePort()
  const spawned = spawnController({
    KUBECONFIG: kubeContext().adminKubeconfig,
    INSTANCES_ENDPOINT: shared === undefined ? receiver.url : receiver.urlFor(path),
    WATCH_RESOURCE_TYPES: "configmaps",
    HEALTH_PROBE_BIND_ADDRESS: `127.0.0.1:${healthPort}`,
    API_BIND_ADDRESS: `127.0.0.1:${apiPort}`,
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
  return {
    ...spawned,
    name,
    receiver,
    sent: () => (shared === undefined ? receiver.requests : receiver.requests.filter((q) => q.path === path)),
    healthz: `http://127.0.0.1:${healthPort}`,
    apiUrl: `http://127.0.0.1:${apiPort}`,
  }
}

const leasePath = (id: string) => `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases/${id}`

interface LeaseSpec {
  holderIdentity?: string
  leaseDurationSeconds?: number
  leaseTransitions?: number
  acquireTime?: string
  renewTime?: string
}

const leaseSpec = async (id: string): Promise<LeaseSpec | undefined> => {
  const response = await adminRequest("GET", leasePath(id))
  return response.status === 200 ? ((response.json as { spec?: LeaseSpec }).spec ?? {}) : undefined
}

const holderOf = async (id: string): Promise<string | undefined> => (await leaseSpec(id))?.holderIdentity

/** A MicroTime of the Lease as epoch ms (the API server keeps microseconds, cut to milliseconds here). */
const epochMs = (text: string | undefined, what: string): number => {
  if (text === undefined) throw new Error(`the lease has no ${what}`)
  return Date.parse(text.replace(/(\.\d{3})\d*Z$/, "$1Z"))
}

/** The lease's renewTime (epoch ms). */
const renewedAt = async (id: string): Promise<number> =>
  epochMs((await leaseSpec(id))?.renewTime, "renewTime")

/** When the current holder acquired the lease (its acquireTime, epoch ms): the moment of the takeover. */
const acquiredAt = async (id: string): Promise<number> =>
  epochMs((await leaseSpec(id))?.acquireTime, "acquireTime")

/** The identity each replica writes into the Lease: its POD_NAME and a random suffix. */
const holds = async (r: Replica, leaseId: string) =>
  (await holderOf(leaseId))?.startsWith(`${r.name}_`) === true

const tail = (r: Replica) => `${r.name}: ${r.stderr().slice(-3000)}`

/** Leading, as the Lease object says. */
const leading = (r: Replica, leaseId: string, timeoutMs?: number) =>
  eventually(
    () => holds(r, leaseId),
    () => `${r.name} never led: ${tail(r)}`,
    timeoutMs,
  )

/**
 * Standing by: its probes answer (the standby serves them while it waits for the lease), the
 * controller's own port does not (it starts only once leading), and another replica holds the lease.
 */
const standingBy = (r: Replica, leaseId: string) =>
  eventually(
    async () =>
      (await fetch(`${r.healthz}/healthz`).catch(() => undefined))?.status === 200 &&
      (await fetch(`${r.apiUrl}/metrics`).then(
        () => false,
        () => true,
      )) &&
      (await holderOf(leaseId)) !== undefined &&
      !(await holds(r, leaseId)),
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

const times = (r: Replica) => r.sent().map((q) => q.at)

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
    await leading(a, leaseId)
    const b = await startReplica("replica-b", leaseId, short)
    await standingBy(b, leaseId)

    // A second standby stops at once on SIGTERM and never touched the lease.
    const c = await startReplica("replica-c", leaseId, short)
    await standingBy(c, leaseId)
    const cSignalled = Date.now()
    c.child.kill("SIGTERM")
    const cExit = await c.exit
    expect(cExit.code).toBe(0)
    console.log(`standby SIGTERM → exit after ${cExit.at - cSignalled} ms`)
    expect(await holderOf(leaseId)).toMatch(/^replica-a_/)
    expect((await leaseSpec(leaseId))?.leaseTransitions).toBe(0)

    // The standby is alive and says what it is.
    const healthz = await fetch(`${b.healthz}/healthz`)
    expect(healthz.status).toBe(200)
    const readyz = await fetch(`${b.healthz}/readyz`)
    expect(readyz.status).toBe(200)
    expect(await readyz.text()).toContain("standby")

    const changes = churn()
    try {
      await eventually(
        () => a.sent().length >= 5,
        () => `the leader sent too little: ${tail(a)}`,
      )
      // The standby sends nothing while the leader lives: checked below, after the takeover, as
      // "every request of the old leader came before the first one of the new leader".
      expect(b.sent()).toEqual([])

      const killedAt = Date.now()
      a.child.kill("SIGKILL")
      await a.exit
      // The dead leader's last renewal (a renewal still in flight could only make it later).
      const lastRenewal = await renewedAt(leaseId)
      await eventually(
        () => b.sent().length > 0,
        () => `the standby never took over: ${tail(b)}`,
        short.leaseMs + 10_000,
      )
      const firstSend = b.sent()[0]!.at
      expect(await holderOf(leaseId)).toMatch(/^replica-b_/)
      const takenOverAt = await acquiredAt(leaseId)
      console.log(
        `SIGKILL → standby leads after ${takenOverAt - killedAt} ms, first request after ${firstSend - killedAt} ms (lease ${short.leaseMs} ms, retry ${short.retryPeriodMs} ms)`,
      )
      // Not before the lease expired: the standby judges expiry from when it saw the last renewal,
      // which is no earlier than the renewal itself. (How soon after the expiry it leads is a
      // figure for the benchmark, not a bound for a shared machine.)
      expect(takenOverAt).toBeGreaterThanOrEqual(lastRenewal + short.leaseMs)
      // Never both: every request of the old leader came before the first one of the new leader.
      expect(Math.max(...times(a))).toBeLessThan(firstSend)
      expect((await leaseSpec(leaseId))?.leaseTransitions).toBe(1)
      // and the new leader keeps the changes coming
      const count = b.sent().length
      await eventually(
        () => b.sent().length > count + 2,
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
    await leading(a, leaseId)
    const b = await startReplica("replica-b", leaseId, slow)
    await standingBy(b, leaseId)

    const changes = churn()
    try {
      await eventually(
        () => a.sent().length >= 5,
        () => `the leader sent too little: ${tail(a)}`,
      )
      // The leader renews until it releases, so a takeover by expiry could not come before this
      // renewal plus the lease duration.
      const renewalBeforeSignal = await renewedAt(leaseId)
      const signalledAt = Date.now()
      a.child.kill("SIGTERM")
      const { code, at: exitedAt } = await a.exit
      expect(code).toBe(0)
      await eventually(
        () => b.sent().length > 0,
        () => `the standby never took over: ${tail(b)}`,
      )
      const firstSend = b.sent()[0]!.at
      console.log(
        `SIGTERM → leader exited after ${exitedAt - signalledAt} ms → standby's first request ${firstSend - exitedAt} ms later (lease ${slow.leaseMs} ms)`,
      )
      // Through the release, not the expiry.
      expect(await holderOf(leaseId)).toMatch(/^replica-b_/)
      expect(await acquiredAt(leaseId)).toBeLessThan(renewalBeforeSignal + slow.leaseMs)
      // Never both: the old leader's final flush came before the new leader's first request.
      expect(Math.max(...times(a))).toBeLessThan(firstSend)
    } finally {
      await changes.stop()
    }
    b.child.kill("SIGTERM")
    expect((await b.exit).code).toBe(0)
  })

  it("a leader frozen (SIGSTOP) past its lease sends nothing after the takeover and exits 1 on resuming", async () => {
    const leaseId = `sync-${randomBytes(3).toString("hex")}`
    // One receiver, an endpoint path per replica: it records who sent what, in one order. It keeps
    // idle connections open, so that a request the frozen leader might make on waking up would
    // reach it over the connection it already has (nothing hides a send behind a reconnect).
    const receiver = await startReceiver({
      paths: ["/sync/replica-a", "/sync/replica-b"],
      keepAliveTimeout: 0,
    })
    receivers.push(receiver)
    // The leader retries every few milliseconds: its sender has a timer coming due at any moment,
    // so on waking up it is as likely as can be to try a send before its elector has run.
    const a = await startReplica(
      "replica-a",
      leaseId,
      short,
      { RETRY_INITIAL_BACKOFF_MS: "5", RETRY_MAX_BACKOFF_MS: "10" },
      receiver,
    )
    await leading(a, leaseId)
    const b = await startReplica("replica-b", leaseId, short, {}, receiver)
    await standingBy(b, leaseId)
    const create = async (name: string) =>
      expectStatus(
        await adminRequest("POST", `/api/v1/namespaces/${namespace}/configmaps`, { metadata: { name } }),
        201,
      )
    const idOf = (name: string) => `${namespace}/v1/ConfigMap/${name}`
    const carries = (q: ReceivedRequest, name: string) => q.payload.upserts.some((u) => u.id === idOf(name))

    await create("sent-by-a")
    await eventually(
      () =>
        a
          .sent()
          .some((q) => carries(q, "sent-by-a") && q.answer.kind === "status" && q.answer.status === 200),
      () => `the leader never sent: ${tail(a)}`,
    )
    // From now on the leader's requests are refused (503): it holds the change and retries it.
    receiver.script = (_, __, path) =>
      path === "/sync/replica-a" ? { kind: "status", status: 503 } : undefined
    await create("held-by-a")
    await eventually(
      () => a.sent().filter((q) => carries(q, "held-by-a")).length >= 3,
      () => `the leader never retried the held change: ${tail(a)}`,
    )
    a.child.kill("SIGSTOP")
    // The takeover, as the Lease records it: b holds it, acquired at `takenOverAt` (b's clock, the
    // same machine's as the receiver's).
    await leading(b, leaseId, short.leaseMs + 15_000)
    const takenOverAt = await acquiredAt(leaseId)
    expect((await leaseSpec(leaseId))?.leaseTransitions).toBe(1)
    await create("after-takeover")
    await eventually(
      () => ["held-by-a", "after-takeover"].every((name) => receiver.state.has(idOf(name))),
      () => `the new leader did not send: ${tail(b)}`,
    )
    const resumedAt = Date.now()
    a.child.kill("SIGCONT")
    const { code, at } = await a.exit
    console.log(
      `SIGSTOP → takeover; SIGCONT → old leader exited ${at - resumedAt} ms later with code ${code}; ` +
        `${a.sent().length} requests from it in all, the last ${takenOverAt - Math.max(...times(a))} ms before the takeover`,
    )
    // A leader that lost its lease exits 1.
    expect(code).toBe(1)
    // Nothing from the old leader after the takeover: not the change it held, not the new one.
    expect(a.sent().filter((q) => q.at >= takenOverAt)).toEqual([])
    const firstOfB = receiver.requests.findIndex((q) => q.path === "/sync/replica-b")
    expect(receiver.requests.slice(firstOfB).filter((q) => q.path === "/sync/replica-a")).toEqual([])
    expect(a.sent().some((q) => carries(q, "after-takeover"))).toBe(false)
    b.child.kill("SIGTERM")
    expect((await b.exit).code).toBe(0)
  })

  it("a leader whose lease is taken exits 1 at once and does not flush what is pending", async () => {
    const leaseId = `sync-${randomBytes(3).toString("hex")}`
    // Through a recording proxy: the tapped watch stream and the leader's /metrics say when it has
    // taken the change in.
    const proxy = await startRecordingProxy(kubeContext())
    const a = await startReplica("replica-a", leaseId, short, {
      KUBECONFIG: proxy.writeKubeconfig(mkdtempSync(join(tmpdir(), "leader-"))),
      DEBOUNCE_WINDOW_MS: "30000",
      DEBOUNCE_MAX_WAIT_MS: "60000",
    })
    await leading(a, leaseId)
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
      async () => {
        const events = watchEvents(proxy, "/api/v1/configmaps")
        const position = events.findIndex((e) => e.namespace === namespace && e.name === "pending") + 1
        return position > 0 && (await changesTakenIn(a.apiUrl, "configmaps")) >= position
      },
      () => `change not taken in: ${tail(a)}`,
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
    // The pending change was not flushed: a non-leader must not send.
    expect(a.receiver.state.has(id)).toBe(false)
    expect(a.sent().every((q) => q.at < at)).toBe(true)
    expect(await holderOf(leaseId)).toBe("intruder")
    await proxy.close()
  })
})
