/**
 * `POST /api/v1/resync` against the real control plane: refused without valid credentials (token
 * file mode, and Kubernetes TokenReview + SubjectAccessReview with real ServiceAccount tokens and
 * RBAC, reviews cached per token), rate-limited (429 with Retry-After), and the resync it starts relists with no more LISTs
 * in flight than LIST_CONCURRENCY, counted by a proxy in front of the API server.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Duration, Option } from "effect"
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest"
import { adminRequest, createNamespace, deleteNamespace, expectStatus, kubeContext } from "../kube/harness.js"
import { serveAdminProxy } from "../support/AdminProxy.js"
import { eventually, postResync, startController } from "../support/controller.js"
import { freePort } from "../support/ports.js"
import { type Receiver, startReceiver } from "../support/Receiver.js"
import { startRecordingProxy } from "../support/RecordingProxy.js"

let dir: string
let receiver: Receiver
const cleanups: Array<() => Promise<unknown>> = []

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "resync-auth-"))
  receiver = await startReceiver()
})
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})
afterAll(async () => {
  await receiver?.close()
  await rm(dir, { recursive: true, force: true })
})

/** A namespace with a few ConfigMaps, deleted after the test. */
const populated = async (prefix: string) => {
  const ns = await createNamespace(prefix)
  cleanups.push(() => deleteNamespace(ns))
  for (const name of ["a", "b"]) {
    expectStatus(
      await adminRequest("POST", `/api/v1/namespaces/${ns}/configmaps`, { metadata: { name } }),
      201,
    )
  }
  return ns
}

/** The controller in-process, its API on a free port; answers `resync(token)` with the HTTP response. */
const start = async (
  config: Parameters<typeof startController>[0]["config"],
  kubeconfig = kubeContext().adminKubeconfig,
) => {
  const apiPort = await freePort()
  const controller = await startController({
    kubeconfig,
    receiver,
    endpoints: true,
    config: {
      watchResourceTypes: ["configmaps"],
      apiBindAddress: { host: "127.0.0.1", port: apiPort },
      healthProbeBindAddress: { host: "127.0.0.1", port: await freePort() },
      ...config,
    },
  })
  cleanups.push(() => controller.stop())
  await eventually(
    () => controller.ready(),
    () => "not ready",
    60_000,
  )
  const resync = (authorization?: string) => postResync(apiPort, authorization)
  return { controller, resync, apiPort }
}

/** A TokenRequest token of a ServiceAccount: what a caller in the cluster would send. */
const serviceAccountToken = async (namespace: string, name: string): Promise<string> => {
  expectStatus(
    await adminRequest("POST", `/api/v1/namespaces/${namespace}/serviceaccounts`, { metadata: { name } }),
    201,
  )
  const response = expectStatus(
    await adminRequest("POST", `/api/v1/namespaces/${namespace}/serviceaccounts/${name}/token`, {
      apiVersion: "authentication.k8s.io/v1",
      kind: "TokenRequest",
      spec: { expirationSeconds: 3600 },
    }),
    201,
  )
  return (response.json as { status: { token: string } }).status.token
}

describe("RESYNC_AUTH=token (RESYNC_TOKEN_FILE)", () => {
  it("no token or a wrong one: 401 and no resync; the right one: 200 and every object re-sent; again within the interval: 429 with Retry-After", async () => {
    const ns = await populated("resync-token")
    const tokenFile = join(dir, "token")
    await writeFile(tokenFile, "the-resync-token\n")
    const { resync } = await start({
      resyncAuth: { mode: "token", tokenFile },
      resyncMinInterval: Duration.minutes(1),
      resyncInterval: Option.none(),
    })
    const id = `${ns}/v1/ConfigMap/a`
    await eventually(
      () => receiver.state.has(id) && receiver.state.has(`${ns}/v1/ConfigMap/b`),
      () => "not synced",
    )
    const sentBefore = receiver.history.get(id)?.length ?? 0

    for (const authorization of [
      undefined,
      "Bearer wrong",
      "Basic the-resync-token",
      "Bearer the-resync-tokenX",
    ]) {
      const refused = await resync(authorization)
      expect(refused.status, String(authorization)).toBe(401)
      expect(refused.headers.get("www-authenticate")).toMatch(/^Bearer /)
      expect(await refused.json()).toMatchObject({ status: "error" })
    }

    const accepted = await resync("Bearer the-resync-token")
    expect(accepted.status).toBe(200)
    expect(await accepted.json()).toMatchObject({ status: "ok", types: 1, incomplete: [] })
    // The resync re-sends every object, unchanged ones included; and only the accepted call did.
    await eventually(
      () => (receiver.history.get(id)?.length ?? 0) === sentBefore + 1,
      () => `not re-sent: ${receiver.history.get(id)?.length} times`,
    )

    const limited = await resync("Bearer the-resync-token")
    expect(limited.status).toBe(429)
    const retryAfter = Number(limited.headers.get("retry-after"))
    expect(retryAfter).toBeGreaterThanOrEqual(1)
    expect(retryAfter).toBeLessThanOrEqual(60)
    expect(await limited.json()).toMatchObject({ status: "error" })

    // A marker created after the refused call arrives once; had the 429 resynced, `a` would have
    // been re-sent before it (a resync's upserts are queued before the marker's event).
    expectStatus(
      await adminRequest("POST", `/api/v1/namespaces/${ns}/configmaps`, { metadata: { name: "marker" } }),
      201,
    )
    await eventually(
      () => receiver.state.has(`${ns}/v1/ConfigMap/marker`),
      () => "marker not synced",
    )
    expect(receiver.history.get(id)?.length).toBe(sentBefore + 1)
  })
})

describe("RESYNC_AUTH=kubernetes (TokenReview + SubjectAccessReview)", () => {
  it("a ServiceAccount allowed `post` on /api/v1/resync by RBAC: 200; one without: 403; a made-up token or none: 401", async () => {
    const ns = await populated("resync-kube")
    const allowed = await serviceAccountToken(ns, "allowed")
    const other = await serviceAccountToken(ns, "other")
    const role = `resync-caller-${ns}`
    expectStatus(
      await adminRequest("POST", "/apis/rbac.authorization.k8s.io/v1/clusterroles", {
        metadata: { name: role },
        rules: [{ nonResourceURLs: ["/api/v1/resync"], verbs: ["post"] }],
      }),
      201,
    )
    cleanups.push(() => adminRequest("DELETE", `/apis/rbac.authorization.k8s.io/v1/clusterroles/${role}`))
    expectStatus(
      await adminRequest("POST", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", {
        metadata: { name: role },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: role },
        subjects: [{ kind: "ServiceAccount", name: "allowed", namespace: ns }],
      }),
      201,
    )
    cleanups.push(() =>
      adminRequest("DELETE", `/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/${role}`),
    )

    // The default mode: nothing about authentication configured. Through a recording proxy, to
    // count the reviews the controller asks for.
    const proxy = await startRecordingProxy(kubeContext())
    cleanups.push(() => proxy.close())
    const reviews = () =>
      proxy.requests.filter((r) => r.method === "POST" && r.path.endsWith("/tokenreviews")).length
    const { resync } = await start(
      { resyncMinInterval: Duration.zero, resyncInterval: Option.none() },
      proxy.writeKubeconfig(dir),
    )
    expect((await resync()).status).toBe(401)
    expect(reviews()).toBe(0)
    expect((await resync("Bearer not-a-kubernetes-token")).status).toBe(401)
    const forbidden = await resync(`Bearer ${other}`)
    expect(forbidden.status).toBe(403)
    expect(((await forbidden.json()) as { message: string }).message).toContain(
      `system:serviceaccount:${ns}:other`,
    )
    const ok = await resync(`Bearer ${allowed}`)
    expect(ok.status).toBe(200)
    expect(await ok.json()).toMatchObject({ status: "ok", types: 1, incomplete: [] })
    expect(reviews()).toBe(3)
    // Answers are cached briefly per token: asking again costs the API server nothing.
    expect((await resync(`Bearer ${other}`)).status).toBe(403)
    expect((await resync(`Bearer ${allowed}`)).status).toBe(200)
    expect(reviews()).toBe(3)
  })
})

describe("the resync's relists", () => {
  it("never have more LISTs in flight than LIST_CONCURRENCY", async () => {
    const types = [
      "configmaps",
      "secrets",
      "serviceaccounts",
      "services",
      "namespaces",
      "limitranges",
      "resourcequotas",
      "podtemplates",
    ]
    // Every LIST held a little at the proxy, so that relists overlap as far as the controller lets them.
    let inFlight = 0
    let most = 0
    let lists = 0
    const proxy = await serveAdminProxy(kubeContext(), "counting", (req, res, forward) => {
      const isList =
        req.method === "GET" && /[?&]limit=/.test(req.url ?? "") && !/[?&]watch=/.test(req.url ?? "")
      if (!isList) {
        forward((answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers)
          // A watch's head must reach the controller before its first event does.
          res.flushHeaders()
          answer.pipe(res)
        })
        return
      }
      inFlight++
      lists++
      most = Math.max(most, inFlight)
      let done = false
      const finish = () => {
        if (!done) inFlight--
        done = true
      }
      res.on("close", finish)
      forward((answer) =>
        setTimeout(() => {
          res.writeHead(answer.statusCode ?? 502, answer.headers)
          answer.pipe(res)
        }, 100),
      )
    })
    cleanups.push(() => proxy.close())
    const { controller } = await start(
      {
        // Fewer types than connections: through this HTTP/1.1 proxy every watch holds a connection.
        watchResourceTypes: types,
        listConcurrency: 2,
        watchList: false,
        resyncAuth: { mode: "none" },
        resyncInterval: Option.none(),
      },
      proxy.writeKubeconfig(dir),
    )
    most = 0
    lists = 0
    const outcome = await controller.resync()
    expect(outcome.incomplete).toEqual([])
    expect(outcome.types).toBe(types.length)
    expect(lists).toBeGreaterThanOrEqual(outcome.types)
    expect(most).toBe(2)
  })
})
