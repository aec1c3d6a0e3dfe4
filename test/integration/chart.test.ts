/**
 * The Helm chart (charts/k8s-vectordb-sync), with the helm binary built by test/kube/build.sh:
 *
 * - `helm lint --strict` and `helm template` pass for the default values and for ci/all-values.yaml,
 *   which sets every option; the pod's environment matches the controller's declared variables
 *   (src/config/Variables.ts) name for name and default for default, and so do the ports, the grace
 *   period and the chart's own fallback for an empty shutdown timeout.
 * - `helm install` into the real kube-apiserver creates every rendered object (server-side
 *   validation, no dry run); then the controller runs in-process with a TokenRequest token of the
 *   chart's ServiceAccount and syncs: the chart's RBAC is enough. With rbac.rules replaced by rules
 *   that leave Secrets out, it still syncs the rest and reports secrets as forbidden.
 */
import { execFile } from "node:child_process"
import { randomBytes } from "node:crypto"
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises"
import { request } from "node:https"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { Duration, Effect, Either, Option } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { parseAllDocuments, parse as parseYaml, stringify } from "yaml"
import * as Codec from "../../src/checkpoint/Codec.js"
import * as Objects from "../../src/checkpoint/Objects.js"
import { configReference, defaultValue, Variables } from "../../src/config/Variables.js"
import { KubeClient } from "../../src/kube/KubeClient.js"
import { type TypeStatus, Watchers } from "../../src/watch/Watchers.js"
import {
  adminRequest,
  createNamespace,
  deleteNamespace,
  expectStatus,
  kubeContext,
  waitUntil,
} from "../kube/harness.js"
import { eventually, postResync, type RunningController, startController } from "../support/controller.js"
import { kubeTool } from "../support/kubeTool.js"
import { freePort } from "../support/ports.js"
import { deletePrometheusRuleCrd, ensurePrometheusRuleCrd } from "../support/prometheusRuleCrd.js"
import { type Receiver, startReceiver } from "../support/Receiver.js"

const chartDir = resolve("charts/k8s-vectordb-sync")
const allValues = join(chartDir, "ci/all-values.yaml")

// ---- helm ----------------------------------------------------------------------------------------

interface Run {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

let helmBin: string
let helmHome: string

const helm = (...args: ReadonlyArray<string>): Promise<Run> =>
  new Promise((resolvePromise) => {
    execFile(
      helmBin,
      args,
      {
        maxBuffer: 64 * 1024 * 1024,
        // Hermetic: no repositories, plugins or caches of the machine's user.
        env: {
          PATH: process.env.PATH ?? "",
          HOME: helmHome,
          HELM_CACHE_HOME: join(helmHome, "cache"),
          HELM_CONFIG_HOME: join(helmHome, "config"),
          HELM_DATA_HOME: join(helmHome, "data"),
        },
      },
      (error, stdout, stderr) =>
        resolvePromise({
          code: error === null ? 0 : typeof error.code === "number" ? error.code : 1,
          stdout,
          stderr,
        }),
    )
  })

const helmOk = async (...args: ReadonlyArray<string>): Promise<string> => {
  const run = await helm(...args)
  if (run.code !== 0)
    throw new Error(`helm ${args.join(" ")} exited ${run.code}:\n${run.stderr}${run.stdout}`)
  return run.stdout
}

interface Manifest {
  readonly apiVersion: string
  readonly kind: string
  readonly metadata: {
    readonly name: string
    readonly namespace?: string
    readonly labels?: Record<string, string>
  }
  readonly [key: string]: unknown
}

// biome-ignore lint/suspicious/noExplicitAny: rendered manifests are checked field by field below.
type Any = any

const template = async (release: string, namespace: string, ...args: ReadonlyArray<string>) => {
  const text = await helmOk(
    "template",
    release,
    chartDir,
    "--namespace",
    namespace,
    "--kube-version",
    kubeContext().kubernetesVersion,
    ...args,
  )
  const docs = parseAllDocuments(text)
  for (const doc of docs)
    if (doc.errors.length > 0) throw new Error(`invalid YAML from helm: ${doc.errors[0]}`)
  return docs.map((doc) => doc.toJS() as Manifest).filter((m) => m !== null)
}

const find = (manifests: ReadonlyArray<Manifest>, kind: string, nameSuffix = ""): Any => {
  const found = manifests.filter((m) => m.kind === kind && m.metadata.name.endsWith(nameSuffix))
  if (found.length !== 1) {
    throw new Error(
      `expected one ${kind}${nameSuffix}, got ${found.map((m) => m.metadata.name).join(", ") || "none"}`,
    )
  }
  return found[0]
}

const containerOf = (manifests: ReadonlyArray<Manifest>): Any =>
  find(manifests, "Deployment").spec.template.spec.containers[0]

const envOf = (manifests: ReadonlyArray<Manifest>): Map<string, string> =>
  new Map(
    (containerOf(manifests).env as Array<{ name: string; value: string }>).map((e) => [e.name, e.value]),
  )

/** The grace period the chart must derive from the controller's default shutdown timeout. */
const defaultGracePeriod = async (): Promise<number> => {
  const values = parseYaml(await readFile(join(chartDir, "values.yaml"), "utf8"))
  const extra: number = values.terminationGracePeriodExtraSeconds
  expect(extra).toBeGreaterThan(0)
  return Math.ceil(defaultValue(Variables.SHUTDOWN_TIMEOUT_MS) / 1000) + extra
}

/** An unsafe value must stop rendering with a message that names what to fix. */
const refused = async (setting: string, message: string) => {
  const result = await helm(
    "template",
    "r",
    chartDir,
    "--kube-version",
    kubeContext().kubernetesVersion,
    "--set",
    setting,
  )
  expect(result.code, setting).not.toBe(0)
  expect(result.stderr, setting).toContain(message)
}

const valuesFile = async (values: unknown): Promise<string> => {
  const path = join(helmHome, `values-${randomBytes(4).toString("hex")}.yaml`)
  await writeFile(path, stringify(values))
  return path
}

/** What RESYNC_AUTH=kubernetes (the default) adds to the controller's ClusterRole. */
const reviewRules = [
  { apiGroups: ["authentication.k8s.io"], resources: ["tokenreviews"], verbs: ["create"] },
  { apiGroups: ["authorization.k8s.io"], resources: ["subjectaccessreviews"], verbs: ["create"] },
]

// ---- Kubernetes as the chart's ServiceAccount ------------------------------------------------------

/** A kubeconfig holding a TokenRequest token of `namespace/serviceAccount`: how the pod would authenticate. */
const serviceAccountKubeconfig = async (namespace: string, serviceAccount: string) => {
  const response = expectStatus(
    await adminRequest("POST", `/api/v1/namespaces/${namespace}/serviceaccounts/${serviceAccount}/token`, {
      apiVersion: "authentication.k8s.io/v1",
      kind: "TokenRequest",
      spec: { expirationSeconds: 3600 },
    }),
    201,
  )
  const token = (response.json as { status: { token: string } }).status.token
  const { server, caFile } = kubeContext()
  const path = join(helmHome, `kubeconfig-${namespace}-${serviceAccount}`)
  await writeFile(
    path,
    stringify({
      apiVersion: "v1",
      kind: "Config",
      clusters: [{ name: "test", cluster: { server, "certificate-authority": caFile } }],
      users: [{ name: serviceAccount, user: { token } }],
      contexts: [{ name: "sa", context: { cluster: "test", user: serviceAccount } }],
      "current-context": "sa",
    }),
  )
  return { path, token }
}

const tokenRequest = (token: string, method: string, path: string): Promise<number> =>
  readFile(kubeContext().caFile).then(
    (ca) =>
      new Promise((resolvePromise, reject) => {
        const server = new URL(kubeContext().server)
        const req = request(
          {
            host: server.hostname,
            port: server.port,
            method,
            path,
            ca,
            agent: false,
            headers: { authorization: `Bearer ${token}`, accept: "application/json" },
          },
          (res) => {
            res.resume()
            res.on("end", () => resolvePromise(res.statusCode ?? 0))
          },
        )
        req.on("error", reject)
        req.end()
      }),
  )

const watcherStatus = (controller: RunningController): Promise<ReadonlyArray<TypeStatus>> =>
  controller.runtime.runPromise(Effect.flatMap(Watchers, (w) => w.status))

// ---- lifecycle -----------------------------------------------------------------------------------

const releases: Array<{ name: string; namespace: string }> = []
const namespaces: Array<string> = []
const controllers: Array<RunningController> = []
let receiver: Receiver
const serviceMonitorCrd = "servicemonitors.monitoring.coreos.com"
let createdCrd = false
let createdRuleCrd = false

beforeAll(async () => {
  helmBin = kubeTool("helm")
  helmHome = await mkdtemp(join(tmpdir(), "vectordb-sync-helm-"))
  receiver = await startReceiver()
}, 900_000)

afterAll(async () => {
  for (const controller of controllers) await controller.stop().catch(() => undefined)
  await receiver?.close()
  for (const release of releases) {
    await helm(
      "uninstall",
      release.name,
      "--namespace",
      release.namespace,
      "--kubeconfig",
      kubeContext().adminKubeconfig,
    )
  }
  for (const ns of namespaces) await deleteNamespace(ns).catch(() => undefined)
  if (createdRuleCrd) await deletePrometheusRuleCrd()
  if (createdCrd) {
    await adminRequest(
      "DELETE",
      `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${serviceMonitorCrd}`,
    )
  }
  if (helmHome !== undefined) await rm(helmHome, { recursive: true, force: true })
})

// ---- lint and template ---------------------------------------------------------------------------

describe("helm lint and helm template", () => {
  it("lint --strict passes for the default values and for the values file that sets every option", async () => {
    const kubeVersion = ["--kube-version", kubeContext().kubernetesVersion]
    expect(await helmOk("lint", chartDir, "--strict", ...kubeVersion)).toContain("0 chart(s) failed")
    expect(await helmOk("lint", chartDir, "--strict", "-f", allValues, ...kubeVersion)).toContain(
      "0 chart(s) failed",
    )
    // The linter is live: a values file giving invalid object names fails it (--strict).
    const broken = await valuesFile({ fullnameOverride: "Not_A_Name" })
    expect((await helm("lint", chartDir, "--strict", "-f", broken, ...kubeVersion)).code).not.toBe(0)
  })

  it("default values: the pod's environment is the configuration reference's defaults", async () => {
    const manifests = await template("r", "ns")
    const env = envOf(manifests)
    for (const variable of configReference) {
      // The chart names the checkpoint after the release (its Role lists exactly those names).
      if (variable.name === "CHECKPOINT_NAME") continue
      if (variable.default === undefined) expect(env.has(variable.name), variable.name).toBe(false)
      else expect(env.get(variable.name), variable.name).toBe(variable.default)
    }
    expect(env.get("CHECKPOINT_NAME")).toBe("r-k8s-vectordb-sync-checkpoint")
    // Besides the configuration, only the pod's name (the leader-election identity) and the heap cap.
    const known = new Set(configReference.map((v) => v.name))
    expect([...env.keys()].filter((name) => !known.has(name))).toEqual(["POD_NAME", "NODE_OPTIONS"])
    // Half of the default 512Mi memory limit, and a small young generation.
    expect(env.get("NODE_OPTIONS")).toBe("--max-old-space-size=256 --max-semi-space-size=4")
    expect(containerOf(manifests).env[0]).toEqual({
      name: "POD_NAME",
      valueFrom: { fieldRef: { fieldPath: "metadata.name" } },
    })
  })

  it("values.yaml documents every variable of the configuration reference", async () => {
    const text = await readFile(join(chartDir, "values.yaml"), "utf8")
    const comments = text
      .split("\n")
      .filter((line) => line.trim().startsWith("#"))
      .join("\n")
    const undocumented = configReference.filter((v) => !new RegExp(`\\b${v.name}\\b`).test(comments))
    expect(undocumented.map((v) => v.name)).toEqual([])
    // And the parsed defaults are the reference's (numbers and booleans as the chart writes them).
    const values = parseYaml(text)
    expect(values.config.excludeResourceTypes).toBe(
      configReference.find((v) => v.name === "EXCLUDE_RESOURCE_TYPES")?.default,
    )
  })

  it("every option: each variable is set, to the value file's value, not the default", async () => {
    const manifests = await template("r", "ns", "-f", allValues)
    const env = envOf(manifests)
    for (const variable of configReference) {
      expect(env.has(variable.name), `${variable.name} missing from the pod`).toBe(true)
      expect(env.get(variable.name), `${variable.name} left at its default`).not.toBe(variable.default)
    }
    expect(env.get("ENDPOINT_TOKEN_FILE")).toBe("/var/run/secrets/k8s-vectordb-sync/receiver-token/bearer")
    expect(env.get("LEADER_ELECTION_NAMESPACE")).toBe("ns")
    expect(env.get("NODE_OPTIONS")).toBe("--max-old-space-size=384")
    const container = containerOf(manifests)
    expect(container.ports).toEqual([
      { name: "health", containerPort: 9081, protocol: "TCP" },
      { name: "api", containerPort: 9082, protocol: "TCP" },
    ])
    expect(container.image).toBe(
      "registry.example/k8s-vectordb-sync@sha256:0000000000000000000000000000000000000000000000000000000000000000",
    )
    const pod = find(manifests, "Deployment").spec.template.spec
    expect(pod.terminationGracePeriodSeconds).toBe(60)
    expect(env.get("ENDPOINT_HEADERS_FILE")).toBe(
      "/var/run/secrets/k8s-vectordb-sync/receiver-headers/tenant-headers",
    )
    expect(pod.volumes.map((v: Any) => v.name)).toEqual([
      "tmp",
      "receiver-token",
      "resync-token",
      "receiver-ca",
      "receiver-headers",
      "scratch",
    ])
    expect(env.get("RESYNC_TOKEN_FILE")).toBe("/var/run/secrets/k8s-vectordb-sync/resync-token/resync")
    expect(find(manifests, "Role").rules).toEqual([
      { apiGroups: ["coordination.k8s.io"], resources: ["leases"], verbs: ["get", "create", "update"] },
    ])
    expect(find(manifests, "ClusterRole").rules).toEqual(
      parseYaml(await readFile(allValues, "utf8")).rbac.rules,
    )
    expect(find(manifests, "ServiceMonitor").spec.endpoints).toEqual([
      { port: "api", path: "/metrics", interval: "15s", scrapeTimeout: "5s" },
    ])
  })

  it("default values: least privilege, hardened pod, probes on the real endpoints, grace period above the shutdown timeout", async () => {
    const manifests = await template("r", "ns")
    expect(manifests.map((m) => m.kind).sort()).toEqual([
      "ClusterRole",
      "ClusterRole",
      "ClusterRoleBinding",
      "Deployment",
      "Role",
      "RoleBinding",
      "Service",
      "ServiceAccount",
    ])
    // The checkpoint: its own ConfigMaps by name, in the release namespace; create by kind only.
    const checkpointRole = find(manifests, "Role", "-checkpoint")
    expect(checkpointRole.metadata.namespace).toBe("ns")
    const name = "r-k8s-vectordb-sync-checkpoint"
    expect(checkpointRole.rules).toEqual([
      {
        apiGroups: [""],
        resources: ["configmaps"],
        resourceNames: [name, ...Array.from({ length: 7 }, (_, i) => `${name}-${i + 1}`)],
        verbs: ["get", "update", "patch", "delete"],
      },
      { apiGroups: [""], resources: ["configmaps"], verbs: ["create"] },
    ])
    expect(find(manifests, "RoleBinding", "-checkpoint").subjects).toEqual([
      { kind: "ServiceAccount", name: "r-k8s-vectordb-sync", namespace: "ns" },
    ])
    expect(find(manifests, "ClusterRole", "-k8s-vectordb-sync").rules).toEqual([
      { apiGroups: ["*"], resources: ["*"], verbs: ["list", "watch"] },
      ...reviewRules,
    ])
    // RESYNC_AUTH unset and no token file: kubernetes mode, and a ClusterRole to bind callers to.
    expect(envOf(manifests).has("RESYNC_AUTH")).toBe(false)
    expect(find(manifests, "ClusterRole", "-resync").rules).toEqual([
      { nonResourceURLs: ["/api/v1/resync"], verbs: ["post"] },
    ])
    const binding = find(manifests, "ClusterRoleBinding")
    expect(binding.subjects).toEqual([
      { kind: "ServiceAccount", name: "r-k8s-vectordb-sync", namespace: "ns" },
    ])
    const deployment = find(manifests, "Deployment")
    const pod = deployment.spec.template.spec
    expect(pod.serviceAccountName).toBe("r-k8s-vectordb-sync")
    expect(pod.securityContext).toMatchObject({
      runAsNonRoot: true,
      seccompProfile: { type: "RuntimeDefault" },
    })
    const container = containerOf(manifests)
    expect(container.securityContext).toMatchObject({
      runAsNonRoot: true,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      privileged: false,
      capabilities: { drop: ["ALL"] },
      seccompProfile: { type: "RuntimeDefault" },
    })
    expect(container.livenessProbe.httpGet).toEqual({ path: "/healthz", port: "health" })
    expect(container.readinessProbe.httpGet).toEqual({ path: "/readyz", port: "health" })
    const healthPort = defaultValue(Variables.HEALTH_PROBE_BIND_ADDRESS).port
    const apiPort = defaultValue(Variables.API_BIND_ADDRESS).port
    expect(container.ports.map((p: Any) => [p.name, p.containerPort])).toEqual([
      ["health", healthPort],
      ["api", apiPort],
    ])
    expect(container.resources.requests).toBeDefined()
    expect(container.resources.limits.memory).toBeDefined()
    // The default shutdown timeout + 10 s: the pod is never killed in the middle of its final flush.
    expect(pod.terminationGracePeriodSeconds).toBe(await defaultGracePeriod())
    expect(find(manifests, "Service").spec.ports.map((p: Any) => [p.name, p.port, p.targetPort])).toEqual([
      ["health", healthPort, "health"],
      ["api", apiPort, "api"],
    ])
  })

  it("derives the heap cap from the memory limit, unless maxHeapMb or NODE_OPTIONS says otherwise", async () => {
    const nodeOptions = async (...args: ReadonlyArray<string>) =>
      envOf(await template("r", "ns", ...args)).get("NODE_OPTIONS")
    const heap = (...args: ReadonlyArray<string>) => nodeOptions("--set", "semiSpaceMb=0", ...args)
    expect(await heap("--set", "resources.limits.memory=1Gi")).toBe("--max-old-space-size=512")
    expect(await heap("--set", "resources.limits.memory=600M")).toBe("--max-old-space-size=286")
    expect(await heap("--set", "resources.limits.memory=1Gi", "--set", "heapPercentOfMemoryLimit=75")).toBe(
      "--max-old-space-size=768",
    )
    expect(await heap("--set", "maxHeapMb=300")).toBe("--max-old-space-size=300")
    expect(await nodeOptions("--set", "maxHeapMb=300", "--set", "semiSpaceMb=8")).toBe(
      "--max-old-space-size=300 --max-semi-space-size=8",
    )
    // No limit, no explicit cap, no semi-space size: Node's own defaults, so no NODE_OPTIONS at all.
    expect(await heap("--set", "resources.limits=null")).toBeUndefined()
    await refused("resources.limits.memory=lots", "expected a quantity such as 512Mi")
  })

  it("derives the grace period from the shutdown timeout and refuses unsafe settings", async () => {
    const derived = await template("r", "ns", "--set", "config.shutdownTimeoutMs=45500")
    expect(find(derived, "Deployment").spec.template.spec.terminationGracePeriodSeconds).toBe(56)
    // Left empty, the controller applies its own default, and the chart's fallback must be that one.
    const unset = await template("r", "ns", "--set", "config.shutdownTimeoutMs=null")
    expect(envOf(unset).has("SHUTDOWN_TIMEOUT_MS")).toBe(false)
    expect(find(unset, "Deployment").spec.template.spec.terminationGracePeriodSeconds).toBe(
      await defaultGracePeriod(),
    )

    await refused("terminationGracePeriodSeconds=20", "must be greater than config.shutdownTimeoutMs")
    await refused("replicaCount=2", "needs leaderElection.enabled=true")
    await refused("config.apiBindAddress=:0", "config.apiBindAddress")
    await refused("resyncAuth.mode=token", "resyncAuth.mode=token needs resyncAuth.existingSecret")
    await refused("resyncAuth.mode=basic", "expected kubernetes, token or none")
  })
})

// ---- installed for real, then used -----------------------------------------------------------------

const install = async (valuesArgs: ReadonlyArray<string>, prefix: string) => {
  const namespace = await createNamespace(prefix)
  namespaces.push(namespace)
  const name = `${prefix}-${randomBytes(3).toString("hex")}`
  const notes = await helmOk(
    "install",
    name,
    chartDir,
    "--namespace",
    namespace,
    "--kubeconfig",
    kubeContext().adminKubeconfig,
    ...valuesArgs,
  )
  releases.push({ name, namespace })
  return { name, namespace, notes, fullname: `${name}-k8s-vectordb-sync` }
}

/** Fresh objects in a fresh namespace, created as admin, for a controller to sync. */
const seed = async () => {
  const ns = await createNamespace("chart-sync")
  namespaces.push(ns)
  expectStatus(
    await adminRequest("POST", `/api/v1/namespaces/${ns}/configmaps`, { metadata: { name: "visible" } }),
    201,
  )
  expectStatus(
    await adminRequest("POST", `/api/v1/namespaces/${ns}/secrets`, {
      metadata: { name: "hidden" },
      stringData: { password: "never-synced-data" },
    }),
    201,
  )
  return ns
}

describe("the chart installed in the real API server", () => {
  it("default values: the ServiceAccount's ClusterRole is enough to list and watch every type and sync", async () => {
    const release = await install([], "chart-default")
    expect(release.notes).toContain("DRY RUN")
    expect(
      (
        await adminRequest(
          "GET",
          `/apis/apps/v1/namespaces/${release.namespace}/deployments/${release.fullname}`,
        )
      ).status,
    ).toBe(200)
    const { path, token } = await serviceAccountKubeconfig(release.namespace, release.fullname)
    // list and watch only: reading one object is not allowed.
    expect(await tokenRequest(token, "GET", "/api/v1/namespaces/default/serviceaccounts/default")).toBe(403)
    expect(await tokenRequest(token, "GET", "/api/v1/secrets?limit=1")).toBe(200)

    const controller = await startController({ kubeconfig: path, receiver })
    controllers.push(controller)
    await eventually(
      () => controller.ready(),
      () => "the controller never became ready with the chart's ServiceAccount",
      60_000,
    )
    const status = await watcherStatus(controller)
    expect(status.length).toBeGreaterThan(20)
    expect(status.filter((s) => s.phase === "forbidden").map((s) => s.key)).toEqual([])

    const ns = await seed()
    await eventually(
      () => receiver.state.has(`${ns}/v1/ConfigMap/visible`) && receiver.state.has(`${ns}/v1/Secret/hidden`),
      () => `not synced: ${[...receiver.state.keys()].filter((id) => id.startsWith(ns)).join(", ")}`,
    )
    await controller.stop()
  })

  it("RESYNC_AUTH=kubernetes (the default): the chart's RBAC lets the controller review callers; a caller bound through resyncAuth.callers may resync, another may not", async () => {
    const callers = await createNamespace("chart-callers")
    namespaces.push(callers)
    for (const name of ["allowed", "other"]) {
      expectStatus(
        await adminRequest("POST", `/api/v1/namespaces/${callers}/serviceaccounts`, { metadata: { name } }),
        201,
      )
    }
    const release = await install(
      [
        "-f",
        await valuesFile({
          resyncAuth: { callers: [{ kind: "ServiceAccount", name: "allowed", namespace: callers }] },
        }),
      ],
      "chart-resync",
    )
    expect(release.notes).toContain(`ClusterRole ${release.fullname}-resync`)
    const { path } = await serviceAccountKubeconfig(release.namespace, release.fullname)
    const apiPort = await freePort()
    const controller = await startController({
      kubeconfig: path,
      receiver,
      endpoints: true,
      config: {
        watchResourceTypes: ["configmaps"],
        apiBindAddress: { host: "127.0.0.1", port: apiPort },
        healthProbeBindAddress: { host: "127.0.0.1", port: await freePort() },
        resyncMinInterval: Duration.zero,
      },
    })
    controllers.push(controller)
    await eventually(
      () => controller.ready(),
      () => "not ready with the chart's ServiceAccount",
      60_000,
    )
    const resync = (token?: string) =>
      postResync(apiPort, token === undefined ? undefined : `Bearer ${token}`)
    const allowed = (await serviceAccountKubeconfig(callers, "allowed")).token
    const other = (await serviceAccountKubeconfig(callers, "other")).token
    expect((await resync()).status).toBe(401)
    expect((await resync("not-a-token")).status).toBe(401)
    const forbidden = await resync(other)
    expect(forbidden.status).toBe(403)
    expect(((await forbidden.json()) as { message: string }).message).toContain(
      `system:serviceaccount:${callers}:other`,
    )
    const ok = await resync(allowed)
    expect(ok.status).toBe(200)
    expect(await ok.json()).toMatchObject({ status: "ok", types: 1, incomplete: [] })
    await controller.stop()
  })

  it("default values: the checkpoint's Role lets the ServiceAccount create, split, read and shrink its checkpoint, and touch no other ConfigMap", async () => {
    const release = await install([], "chart-checkpoint")
    const { path, token } = await serviceAccountKubeconfig(release.namespace, release.fullname)
    const name = `${release.fullname}-checkpoint`
    // The requests the controller's checkpoint makes, as the chart's ServiceAccount.
    const withStore = <A, E>(f: (store: Objects.ObjectStore) => Effect.Effect<A, E>) =>
      Effect.runPromise(
        Effect.flatMap(KubeClient, (kube) =>
          f(Objects.make(kube, { namespace: release.namespace, name, requestTimeout: "10 seconds" })),
        ).pipe(Effect.provide(KubeClient.layerFromFile(path))),
      )
    const ids = Array.from(
      { length: 2_000 },
      (_, i) => `ns-${i % 13}/v1/ConfigMap/${randomBytes(6).toString("hex")}`,
    )
    const parts = Codec.encode(ids, 4_096)
    expect(parts.length).toBeGreaterThanOrEqual(3)
    expect(await withStore((store) => store.read)).toEqual(Option.none())
    await withStore((store) => store.write(parts)) // create
    await withStore((store) => store.write(parts)) // update
    const back = await withStore((store) => store.read)
    expect(Option.map(back, (read) => Either.getOrThrow(Codec.decode(read)))).toEqual(
      Option.some([...ids].sort()),
    )
    // Fewer parts: the ServiceAccount deletes those no longer needed.
    await withStore((store) =>
      Effect.zipRight(store.read, store.write(Codec.encode(ids.slice(0, 10), 4_096))),
    )
    const configMaps = `/api/v1/namespaces/${release.namespace}/configmaps`
    expect((await adminRequest("GET", `${configMaps}/${name}-1`)).status).toBe(404)
    expect((await withStore((store) => store.read)).pipe(Option.map((read) => read.length))).toEqual(
      Option.some(1),
    )
    // Least privilege: another ConfigMap of the namespace can be neither read nor deleted (listing
    // metadata is the ClusterRole's list on every type).
    expectStatus(await adminRequest("POST", configMaps, { metadata: { name: "someone-elses" } }), 201)
    expect(await tokenRequest(token, "GET", `${configMaps}/someone-elses`)).toBe(403)
    expect(await tokenRequest(token, "DELETE", `${configMaps}/someone-elses`)).toBe(403)
  })

  it("rules replaced to leave Secrets out: syncs everything else and reports secrets as forbidden", async () => {
    // What an operator writes to exclude Secrets: every core type but secrets, every other group.
    const core = expectStatus(await adminRequest("GET", "/api/v1"), 200).json as {
      resources: Array<{ name: string; verbs: Array<string> }>
    }
    const groups = expectStatus(await adminRequest("GET", "/apis"), 200).json as {
      groups: Array<{ name: string }>
    }
    const coreResources = core.resources
      .filter((r) => !r.name.includes("/") && r.verbs.includes("list") && r.verbs.includes("watch"))
      .map((r) => r.name)
      .filter((name) => name !== "secrets")
    expect(coreResources).toContain("configmaps")
    const rules = [
      { apiGroups: [""], resources: coreResources, verbs: ["list", "watch"] },
      { apiGroups: groups.groups.map((g) => g.name), resources: ["*"], verbs: ["list", "watch"] },
    ]
    const release = await install(["-f", await valuesFile({ rbac: { rules } })], "chart-nosecrets")
    expect(release.notes).toContain("RBAC: the ClusterRole uses your rbac.rules")
    const clusterRole = expectStatus(
      await adminRequest("GET", `/apis/rbac.authorization.k8s.io/v1/clusterroles/${release.fullname}`),
      200,
    ).json as { rules: unknown }
    expect(clusterRole.rules).toEqual([...rules, ...reviewRules])

    const { path } = await serviceAccountKubeconfig(release.namespace, release.fullname)
    const controller = await startController({ kubeconfig: path, receiver })
    controllers.push(controller)
    await eventually(
      () => controller.ready(),
      () => "the controller never became ready without Secrets",
      60_000,
    )
    const status = await watcherStatus(controller)
    expect(status.filter((s) => s.phase === "forbidden").map((s) => s.key)).toEqual(["secrets"])
    expect(status.find((s) => s.key === "configmaps")?.synced).toBe(true)

    const ns = await seed()
    await eventually(
      () => receiver.state.has(`${ns}/v1/ConfigMap/visible`),
      () => "configmap not synced without Secrets",
    )
    expect(receiver.state.has(`${ns}/v1/Secret/hidden`)).toBe(false)
    await controller.stop()
  })

  it("every option: helm install creates every rendered object, ServiceMonitor, PrometheusRule and dashboard included", async () => {
    // The Prometheus Operator's CRD, reduced to the fields the chart writes, without
    // x-kubernetes-preserve-unknown-fields: a misspelt field is rejected (helm sends strict requests).
    const existing = await adminRequest(
      "GET",
      `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${serviceMonitorCrd}`,
    )
    if (existing.status === 404) {
      const str = { type: "string" }
      const labels = { type: "object", additionalProperties: str }
      expectStatus(
        await adminRequest("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", {
          metadata: { name: serviceMonitorCrd },
          spec: {
            group: "monitoring.coreos.com",
            scope: "Namespaced",
            names: {
              plural: "servicemonitors",
              singular: "servicemonitor",
              kind: "ServiceMonitor",
              listKind: "ServiceMonitorList",
            },
            versions: [
              {
                name: "v1",
                served: true,
                storage: true,
                schema: {
                  openAPIV3Schema: {
                    type: "object",
                    required: ["spec"],
                    properties: {
                      apiVersion: str,
                      kind: str,
                      metadata: { type: "object" },
                      spec: {
                        type: "object",
                        required: ["selector", "endpoints"],
                        properties: {
                          selector: { type: "object", properties: { matchLabels: labels } },
                          namespaceSelector: {
                            type: "object",
                            properties: { matchNames: { type: "array", items: str } },
                          },
                          endpoints: {
                            type: "array",
                            items: {
                              type: "object",
                              properties: { port: str, path: str, interval: str, scrapeTimeout: str },
                            },
                          },
                        },
                      },
                    },
                  },
                },
              },
            ],
          },
        }),
        201,
      )
      createdCrd = true
      await waitUntil("the ServiceMonitor CRD to be served", async () => {
        const response = await adminRequest("GET", "/apis/monitoring.coreos.com/v1")
        return response.status === 200
      })
    }

    createdRuleCrd = await ensurePrometheusRuleCrd()

    const leaseNamespace = await createNamespace("chart-leases")
    namespaces.push(leaseNamespace)
    const release = await install(
      ["-f", allValues, "--set", `leaderElection.namespace=${leaseNamespace}`],
      "chart-all",
    )
    const fullname = `${release.name}-vdbsync`
    expect(release.notes).toContain(`Lease vectordb-sync-leader in namespace ${leaseNamespace}`)
    const rendered = await template(
      release.name,
      release.namespace,
      "-f",
      allValues,
      "--set",
      `leaderElection.namespace=${leaseNamespace}`,
    )
    const paths: Record<string, (m: Manifest) => string> = {
      ServiceAccount: (m) => `/api/v1/namespaces/${m.metadata.namespace}/serviceaccounts/${m.metadata.name}`,
      Service: (m) => `/api/v1/namespaces/${m.metadata.namespace}/services/${m.metadata.name}`,
      Deployment: (m) => `/apis/apps/v1/namespaces/${m.metadata.namespace}/deployments/${m.metadata.name}`,
      ClusterRole: (m) => `/apis/rbac.authorization.k8s.io/v1/clusterroles/${m.metadata.name}`,
      ClusterRoleBinding: (m) => `/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/${m.metadata.name}`,
      Role: (m) =>
        `/apis/rbac.authorization.k8s.io/v1/namespaces/${m.metadata.namespace}/roles/${m.metadata.name}`,
      RoleBinding: (m) =>
        `/apis/rbac.authorization.k8s.io/v1/namespaces/${m.metadata.namespace}/rolebindings/${m.metadata.name}`,
      ServiceMonitor: (m) =>
        `/apis/monitoring.coreos.com/v1/namespaces/${m.metadata.namespace}/servicemonitors/${m.metadata.name}`,
      PrometheusRule: (m) =>
        `/apis/monitoring.coreos.com/v1/namespaces/${m.metadata.namespace}/prometheusrules/${m.metadata.name}`,
      ConfigMap: (m) => `/api/v1/namespaces/${m.metadata.namespace}/configmaps/${m.metadata.name}`,
    }
    expect(rendered.map((m) => m.kind).sort()).toEqual(Object.keys(paths).sort())
    for (const manifest of rendered) {
      const path = paths[manifest.kind]!(manifest)
      expect((await adminRequest("GET", path)).status, path).toBe(200)
    }
    expect(rendered.find((m) => m.kind === "Role")?.metadata.namespace).toBe(leaseNamespace)

    const deployment = expectStatus(
      await adminRequest("GET", `/apis/apps/v1/namespaces/${release.namespace}/deployments/${fullname}`),
      200,
    ).json as Any
    expect(deployment.spec.replicas).toBe(2)
    expect(deployment.spec.template.spec.serviceAccountName).toBe("vectordb-sync")
    // The Role lets the ServiceAccount manage its Lease, and nothing more in that namespace.
    const { token } = await serviceAccountKubeconfig(release.namespace, "vectordb-sync")
    expect(
      await tokenRequest(token, "GET", `/apis/coordination.k8s.io/v1/namespaces/${leaseNamespace}/leases/x`),
    ).toBe(404)
    expect(
      await tokenRequest(
        token,
        "GET",
        `/apis/coordination.k8s.io/v1/namespaces/${release.namespace}/leases/x`,
      ),
    ).toBe(403)
    expect(await tokenRequest(token, "GET", "/api/v1/secrets?limit=1")).toBe(403)
    expect(await tokenRequest(token, "GET", "/api/v1/configmaps?limit=1")).toBe(200)
  })
})
