/**
 * The test control plane itself (test/kube): identities, restarts, controllers, forced 410 Gone.
 * Plain HTTPS through the harness, independent of the product's Kubernetes client.
 */
import { KubeConfig } from "@kubernetes/client-node"
import { afterAll, describe, expect, it } from "vitest"
import {
  adminRequest,
  controlPlaneStatus,
  createNamespace,
  deleteNamespace,
  expectStatus,
  expireResourceVersions,
  kubeContext,
  kubeRequest,
  openWatch,
  restartApiServer,
  userRequest,
  waitUntil,
  withApiServerStopped,
} from "../kube/harness.js"

interface ObjectMeta {
  readonly name: string
  readonly uid: string
  readonly resourceVersion: string
}
interface KubeObject {
  readonly metadata: ObjectMeta
  readonly data?: Record<string, string>
}
interface KubeList {
  readonly metadata: { readonly resourceVersion: string }
  readonly items: ReadonlyArray<KubeObject>
}

const namespaces: Array<string> = []
const namespace = async (prefix: string) => {
  const name = await createNamespace(prefix)
  namespaces.push(name)
  return name
}
afterAll(async () => {
  for (const name of namespaces) await deleteNamespace(name)
})

const createConfigMap = async (ns: string, name: string, extra: Record<string, unknown> = {}) =>
  expectStatus(
    await adminRequest("POST", `/api/v1/namespaces/${ns}/configmaps`, {
      metadata: { name, ...extra },
      data: { key: `value of ${name}` },
    }),
    201,
  ).json as KubeObject

describe("identities", () => {
  it("lets the admin list namespaces", async () => {
    const response = await adminRequest("GET", "/api/v1/namespaces")
    expect(response.status).toBe(200)
    const names = (response.json as KubeList).items.map((item) => item.metadata.name)
    expect(names).toEqual(expect.arrayContaining(["default", "kube-system"]))
  })

  it("authenticates both certificates as the intended users", async () => {
    const review = async (identity: "admin" | "user") => {
      const response = await kubeRequest(
        identity,
        "POST",
        "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        {
          apiVersion: "authentication.k8s.io/v1",
          kind: "SelfSubjectReview",
        },
      )
      expect(response.status).toBe(201)
      return (response.json as { status: { userInfo: { username: string; groups: Array<string> } } }).status
        .userInfo
    }
    const admin = await review("admin")
    expect(admin.username).toBe("admin")
    expect(admin.groups).toContain("system:masters")
    const user = await review("user")
    expect(user.username).toBe(kubeContext().userName)
    expect(user.groups).toEqual(["system:authenticated"])
  })

  it("forbids the unprivileged user to list namespaces (403, not 401)", async () => {
    const response = await userRequest("GET", "/api/v1/namespaces")
    expect(response.status).toBe(403)
    expect(response.json).toMatchObject({
      kind: "Status",
      reason: "Forbidden",
      code: 403,
      message: expect.stringContaining(
        `User "${kubeContext().userName}" cannot list resource "namespaces" in API group "" at the cluster scope`,
      ),
    })
  })

  it("writes kubeconfigs that a Kubernetes client loads with embedded certificates", () => {
    const { server, adminKubeconfig, userKubeconfig, userName } = kubeContext()
    for (const [file, user] of [
      [adminKubeconfig, "admin"],
      [userKubeconfig, userName],
    ] as const) {
      const config = new KubeConfig()
      config.loadFromFile(file)
      expect(config.getCurrentCluster()?.server).toBe(server)
      expect(config.getCurrentCluster()?.caData).toMatch(/^[A-Za-z0-9+/=]+$/)
      expect(config.getCurrentUser()?.name).toBe(user)
      expect(config.getCurrentUser()?.certData).toMatch(/^[A-Za-z0-9+/=]+$/)
      expect(config.getCurrentUser()?.keyData).toMatch(/^[A-Za-z0-9+/=]+$/)
    }
  })
})

describe("kube-apiserver restart", () => {
  it("keeps every object, and closes open watches, across a restart on the same port", async () => {
    const ns = await namespace("restart")
    const before = await createConfigMap(ns, "survivor")
    const watch = await openWatch(
      "admin",
      `/api/v1/namespaces/${ns}/configmaps?watch=1&resourceVersion=${before.metadata.resourceVersion}`,
    )
    expect(watch.status).toBe(200)

    await restartApiServer()

    // The old process is gone: it closed our watch on its way out.
    expect(await watch.next(20_000)).toBe("end")
    const after = await adminRequest("GET", `/api/v1/namespaces/${ns}/configmaps/survivor`)
    expect(after.status).toBe(200)
    expect(after.json).toMatchObject({
      metadata: { uid: before.metadata.uid, resourceVersion: before.metadata.resourceVersion },
      data: { key: "value of survivor" },
    })
  })

  it("refuses connections while stopped and serves the same store once started", async () => {
    const ns = await namespace("stopped")
    const before = await createConfigMap(ns, "kept")
    await withApiServerStopped(async () => {
      expect(await controlPlaneStatus()).toMatchObject({ apiServerRunning: false })
      await expect(adminRequest("GET", "/api/v1/namespaces")).rejects.toMatchObject({ code: "ECONNREFUSED" })
    })
    expect(await controlPlaneStatus()).toMatchObject({ apiServerRunning: true })
    const after = await adminRequest("GET", `/api/v1/namespaces/${ns}/configmaps/kept`)
    expect(after.status).toBe(200)
    expect((after.json as KubeObject).metadata.uid).toBe(before.metadata.uid)
  })
})

describe("kube-controller-manager", () => {
  it("publishes kube-root-ca.crt and a default ServiceAccount into a new namespace", async () => {
    const ns = await createNamespace("controllers", { settle: false })
    namespaces.push(ns)
    await waitUntil(
      "kube-root-ca.crt and the default ServiceAccount",
      async () =>
        (await adminRequest("GET", `/api/v1/namespaces/${ns}/configmaps/kube-root-ca.crt`)).status === 200 &&
        (await adminRequest("GET", `/api/v1/namespaces/${ns}/serviceaccounts/default`)).status === 200,
      { timeoutMs: 60_000 },
    )
  })

  it("garbage-collects a dependent when its owner is deleted", async () => {
    const ns = await namespace("gc")
    const owner = await createConfigMap(ns, "owner")
    await createConfigMap(ns, "dependent", {
      ownerReferences: [{ apiVersion: "v1", kind: "ConfigMap", name: "owner", uid: owner.metadata.uid }],
    })
    expectStatus(
      await adminRequest("DELETE", `/api/v1/namespaces/${ns}/configmaps/owner`, {
        propagationPolicy: "Background",
      }),
      200,
    )
    await waitUntil(
      "the dependent ConfigMap to be collected",
      async () => (await adminRequest("GET", `/api/v1/namespaces/${ns}/configmaps/dependent`)).status === 404,
      { timeoutMs: 90_000 },
    )
  })

  it("deletes a namespace that holds objects", async () => {
    const ns = await createNamespace("doomed")
    await createConfigMap(ns, "a")
    await createConfigMap(ns, "b")
    expectStatus(
      await adminRequest("POST", `/api/v1/namespaces/${ns}/secrets`, {
        metadata: { name: "s" },
        stringData: { password: "x" },
      }),
      201,
    )
    await deleteNamespace(ns)
    // The namespace lingers (Terminating) until the namespace controller has emptied it.
    await waitUntil(
      `namespace ${ns} to disappear`,
      async () => (await adminRequest("GET", `/api/v1/namespaces/${ns}`)).status === 404,
      { timeoutMs: 90_000 },
    )
    const leftovers = await adminRequest("GET", `/api/v1/namespaces/${ns}/configmaps`)
    expect(leftovers.status).toBe(200)
    expect((leftovers.json as KubeList).items).toEqual([])
  })
})

describe("forced 410 Gone", () => {
  it("answers a watch resumed from a pre-expiry resourceVersion with an ERROR event, code 410, reason Expired", async () => {
    const ns = await namespace("gone")
    await createConfigMap(ns, "first")
    const list = expectStatus(await adminRequest("GET", `/api/v1/namespaces/${ns}/configmaps`), 200)
      .json as KubeList
    const watch = await openWatch(
      "admin",
      `/api/v1/namespaces/${ns}/configmaps?watch=1&resourceVersion=${list.metadata.resourceVersion}`,
    )
    expect(watch.status).toBe(200)
    await createConfigMap(ns, "second")
    const added = await watch.next()
    expect(added).toMatchObject({ type: "ADDED", object: { metadata: { name: "second" } } })
    const lastSeen = added === "end" ? "" : (added.object.metadata?.resourceVersion ?? "")
    expect(lastSeen).toMatch(/^\d+$/)

    const compacted = await expireResourceVersions()
    expect(compacted).toBeGreaterThan(Number(lastSeen))
    // The restart ends the open watch, as an apiserver rollout would.
    expect(await watch.next(20_000)).toBe("end")

    // Resuming where we left off: not an HTTP 410, but HTTP 200 and one ERROR event.
    const resumed = await openWatch(
      "admin",
      `/api/v1/namespaces/${ns}/configmaps?watch=1&resourceVersion=${lastSeen}`,
    )
    expect(resumed.status).toBe(200)
    const error = await resumed.next()
    expect(error).toMatchObject({
      type: "ERROR",
      object: {
        kind: "Status",
        apiVersion: "v1",
        status: "Failure",
        reason: "Expired",
        code: 410,
        message: expect.stringMatching(new RegExp(`^too old resource version: ${lastSeen} \\(\\d+\\)$`)),
      },
    })
    expect(await resumed.next(20_000)).toBe("end")

    // Recovery is a fresh list: its resourceVersion is watchable again.
    const relist = expectStatus(await adminRequest("GET", `/api/v1/namespaces/${ns}/configmaps`), 200)
      .json as KubeList
    const names = relist.items.map((item) => item.metadata.name).filter((name) => name !== "kube-root-ca.crt")
    expect(names.sort()).toEqual(["first", "second"])
    const fresh = await openWatch(
      "admin",
      `/api/v1/namespaces/${ns}/configmaps?watch=1&resourceVersion=${relist.metadata.resourceVersion}`,
    )
    await createConfigMap(ns, "third")
    expect(await fresh.next()).toMatchObject({ type: "ADDED", object: { metadata: { name: "third" } } })
    fresh.close()
  })

  it("also expires the resourceVersion for exact reads served from etcd (HTTP 410)", async () => {
    const ns = await namespace("gone-list")
    const cm = await createConfigMap(ns, "old")
    await expireResourceVersions()
    const response = await adminRequest(
      "GET",
      `/api/v1/namespaces/${ns}/configmaps?resourceVersion=${cm.metadata.resourceVersion}&resourceVersionMatch=Exact`,
    )
    expect(response.status).toBe(410)
    expect(response.json).toMatchObject({ kind: "Status", reason: "Expired", code: 410 })
  })
})
