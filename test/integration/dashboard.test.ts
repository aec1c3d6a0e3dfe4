/**
 * The chart's Grafana dashboard and PrometheusRule, rendered by `helm template`:
 *
 * - every expression (panel targets, the dashboard variable's metric, alert rules) is valid PromQL
 *   for the parser Prometheus' own UI uses (@prometheus-io/lezer-promql), after Grafana's
 *   substitution of its interval variables;
 * - every metric name those expressions query exists in `/metrics` of a controller running against
 *   the real control plane, driven through what makes each series appear: syncs, a receiver that
 *   answers 503 once (retries) and 400 for one object (rejected entries), and an identity that may
 *   not list Secrets (forbidden types, watch restarts).
 */
import { execFile } from "node:child_process"
import { readFile } from "node:fs/promises"
import { resolve } from "node:path"
import { parser } from "@prometheus-io/lezer-promql"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { parseAllDocuments } from "yaml"
import {
  adminRequest,
  createNamespace,
  deleteNamespace,
  expectStatus,
  kubeContext,
  userRequest,
} from "../kube/harness.js"
import { eventually, type RunningController, startController } from "../support/controller.js"
import { kubeTool } from "../support/kubeTool.js"
import { freePort } from "../support/ports.js"
import { type Receiver, startReceiver } from "../support/Receiver.js"

const chartDir = resolve("charts/k8s-vectordb-sync")

// ---- PromQL ---------------------------------------------------------------------------------------

/** What Grafana puts in place of its interval variables before the query reaches Prometheus. */
const grafanaSubstitutions: ReadonlyArray<readonly [string, string]> = [
  ["$__rate_interval", "5m"],
  ["$__interval", "1m"],
  ["$__range", "1h"],
]

interface Parsed {
  readonly errors: ReadonlyArray<number>
  readonly metrics: ReadonlyArray<string>
}

/** Syntax errors (their offsets) and the metric names of the vector selectors, from the syntax tree. */
const parsePromQL = (expression: string): Parsed => {
  const text = grafanaSubstitutions.reduce((e, [from, to]) => e.replaceAll(from, to), expression)
  const tree = parser.parse(text)
  const errors: Array<number> = []
  const metrics: Array<string> = []
  tree.iterate({
    enter: (node) => {
      if (node.type.isError) errors.push(node.from)
      if (node.name === "VectorSelector") {
        const name = node.node.getChild("Identifier")
        if (name !== null) metrics.push(text.slice(name.from, name.to))
      }
    },
  })
  return { errors, metrics }
}

// ---- the chart's expressions ------------------------------------------------------------------------

interface Query {
  readonly where: string
  readonly expr: string
}

const helmTemplate = (...args: ReadonlyArray<string>): Promise<string> =>
  new Promise((resolvePromise, reject) => {
    execFile(
      kubeTool("helm"),
      ["template", "r", chartDir, "--kube-version", kubeContext().kubernetesVersion, ...args],
      { maxBuffer: 64 * 1024 * 1024, env: { PATH: process.env.PATH ?? "", HOME: "/nonexistent" } },
      (error, stdout, stderr) => (error === null ? resolvePromise(stdout) : reject(new Error(stderr))),
    )
  })

// biome-ignore lint/suspicious/noExplicitAny: rendered manifests are read field by field below.
type Any = any

let queries: ReadonlyArray<Query>
let dashboard: Any

beforeAll(async () => {
  const manifests: Array<Any> = parseAllDocuments(
    await helmTemplate(
      "--set",
      "metrics.dashboard.enabled=true",
      "--set",
      "metrics.prometheusRule.enabled=true",
    ),
  ).map((doc) => doc.toJS())
  const configMap = manifests.find((m) => m?.kind === "ConfigMap")
  const rule = manifests.find((m) => m?.kind === "PrometheusRule")
  expect(configMap.metadata.labels.grafana_dashboard).toBe("1")
  dashboard = JSON.parse(configMap.data["k8s-vectordb-sync.json"])
  const panelQueries = (dashboard.panels as Array<Any>).flatMap((panel) =>
    (panel.targets as Array<Any>).map((t) => ({
      where: `panel "${panel.title}" ${t.refId}`,
      expr: t.expr as string,
    })),
  )
  // `label_values(<selector>, <label>)` is Grafana's, around a PromQL selector.
  const variableQueries = (dashboard.templating.list as Array<Any>)
    .filter((v) => v.type === "query")
    .map((v) => {
      const match = /^label_values\((.+),\s*\w+\)$/.exec(v.query.query)
      expect(match, `variable ${v.name}`).not.toBeNull()
      return { where: `variable ${v.name}`, expr: match![1]! }
    })
  const ruleQueries = (rule.spec.groups as Array<Any>).flatMap((group) =>
    (group.rules as Array<Any>).map((r) => ({ where: `alert ${r.alert}`, expr: r.expr as string })),
  )
  expect(ruleQueries).toHaveLength(5)
  queries = [...panelQueries, ...variableQueries, ...ruleQueries]
}, 300_000)

describe("the dashboard's and the alerts' expressions", () => {
  it("the parser is live: it reports broken PromQL and finds the selectors' metric names", () => {
    expect(parsePromQL("sum(rate(a_total[5m])").errors.length).toBeGreaterThan(0)
    expect(parsePromQL("rate(a_total{x=}[5m])").errors.length).toBeGreaterThan(0)
    expect(parsePromQL('sum by (x) (rate(a_total[$__rate_interval])) / b{job=~"$job"} > 0 unless c')).toEqual(
      {
        errors: [],
        metrics: ["a_total", "b", "c"],
      },
    )
  })

  it("every expression parses as PromQL", () => {
    expect(queries.length).toBeGreaterThan(15)
    const broken = queries
      .filter((q) => parsePromQL(q.expr).errors.length > 0)
      .map((q) => `${q.where}: ${q.expr}`)
    expect(broken).toEqual([])
    for (const q of queries) expect(parsePromQL(q.expr).metrics.length, q.where).toBeGreaterThan(0)
  })

  it("the alerts' thresholds, severity and selector come from the values", async () => {
    const rendered: Array<Any> = parseAllDocuments(
      await helmTemplate("-f", resolve(chartDir, "ci/all-values.yaml")),
    ).map((doc) => doc.toJS())
    const rules = new Map(
      (rendered.find((m) => m?.kind === "PrometheusRule").spec.groups[0].rules as Array<Any>).map((r) => [
        r.alert,
        r,
      ]),
    )
    expect(rules.get("VectorDBSyncReceiverFailing").for).toBe("5m")
    expect(rules.get("VectorDBSyncNoSuccessfulSend").expr).toContain("> 1200")
    expect(rules.get("VectorDBSyncPendingGrowing").expr).toContain("> 5000")
    expect(rules.get("VectorDBSyncPendingGrowing").for).toBe("20m")
    expect(rules.get("VectorDBSyncForbiddenTypes").for).toBe("30m")
    expect(rules.get("VectorDBSyncWatchRestarts").expr).toMatch(/\* 60 > 10$/)
    for (const rule of rules.values()) {
      expect(rule.labels.severity).toBe("critical")
      expect(rule.expr).toContain('namespace="platform",job="vectordb-sync"')
      expect(parsePromQL(rule.expr).errors).toEqual([])
    }
    const configMap = rendered.find((m) => m?.kind === "ConfigMap")
    expect(configMap.metadata.annotations).toEqual({ grafana_folder: "Kubernetes" })
    expect(configMap.metadata.labels).toMatchObject({ grafana_dashboard: "1", team: "platform" })
  })

  it("the README lists every panel's queries as the dashboard has them", async () => {
    const readme = await readFile(resolve("README.md"), "utf8")
    const missing = (dashboard.panels as Array<Any>)
      .flatMap((panel) => (panel.targets as Array<Any>).map((t) => t.expr as string))
      .filter((expr) => !readme.includes(`\`${expr}\``))
    expect(missing).toEqual([])
  })

  it("the panels cover events, pending, requests, latency, retries, types, last success, RSS and heap", () => {
    const queried = new Set(queries.flatMap((q) => parsePromQL(q.expr).metrics))
    for (const name of [
      "vectordb_sync_watch_events_total",
      "vectordb_sync_pending_entries",
      "vectordb_sync_requests_total",
      "vectordb_sync_send_duration_seconds_bucket",
      "vectordb_sync_retries_total",
      "vectordb_sync_watched_types",
      "vectordb_sync_forbidden_types",
      "vectordb_sync_last_success_timestamp_seconds",
      "vectordb_sync_watch_restarts_total",
      "process_resident_memory_bytes",
      "nodejs_heap_size_used_bytes",
    ])
      expect(queried.has(name), name).toBe(true)
  })
})

// ---- against a running controller -----------------------------------------------------------------

let receiver: Receiver
let controller: RunningController
let apiPort: number
const role = `vectordb-sync-dashboard-${Date.now()}`
const namespaces: Array<string> = []

afterAll(async () => {
  await controller?.stop()
  await receiver?.close()
  for (const ns of namespaces) await deleteNamespace(ns).catch(() => undefined)
  await adminRequest("DELETE", `/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/${role}`)
  await adminRequest("DELETE", `/apis/rbac.authorization.k8s.io/v1/clusterroles/${role}`)
})

/** The metric names a `/metrics` answer holds (a histogram's as `_bucket`, `_sum`, `_count`). */
const exposedNames = async (): Promise<ReadonlySet<string>> => {
  const text = await (await fetch(`http://127.0.0.1:${apiPort}/metrics`)).text()
  return new Set(
    text
      .split("\n")
      .filter((line) => line !== "" && !line.startsWith("#"))
      .map((line) => line.split(/[{ ]/)[0]!),
  )
}

describe("a running controller's /metrics", () => {
  it("has every metric the dashboard and the alerts query", async () => {
    // An identity that may list ConfigMaps and Namespaces but not Secrets: one type is forbidden.
    const { userName } = kubeContext()
    expectStatus(
      await adminRequest("POST", "/apis/rbac.authorization.k8s.io/v1/clusterroles", {
        metadata: { name: role },
        rules: [{ apiGroups: [""], resources: ["configmaps", "namespaces"], verbs: ["list", "watch"] }],
      }),
      201,
    )
    expectStatus(
      await adminRequest("POST", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", {
        metadata: { name: role },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: role },
        subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "User", name: userName }],
      }),
      201,
    )
    await eventually(
      async () => (await userRequest("GET", "/api/v1/configmaps?limit=1")).status === 200,
      () => "the ClusterRoleBinding never took effect",
    )

    receiver = await startReceiver()
    // The first request is turned away (a retry); any request holding `poison` is refused (set aside).
    receiver.script = (payload, index) =>
      index === 0
        ? { kind: "status", status: 503 }
        : payload.upserts.some((r) => r.name === "poison")
          ? { kind: "status", status: 400, body: "poison" }
          : undefined
    apiPort = await freePort()
    controller = await startController({
      kubeconfig: kubeContext().userKubeconfig,
      receiver,
      endpoints: true,
      config: {
        watchResourceTypes: ["configmaps", "namespaces", "secrets"],
        apiBindAddress: { host: "127.0.0.1", port: apiPort },
        healthProbeBindAddress: { host: "127.0.0.1", port: await freePort() },
      },
    })
    const ns = await createNamespace("dashboard")
    namespaces.push(ns)
    for (const name of ["plain", "poison"])
      expectStatus(
        await adminRequest("POST", `/api/v1/namespaces/${ns}/configmaps`, { metadata: { name } }),
        201,
      )
    expectStatus(await adminRequest("DELETE", `/api/v1/namespaces/${ns}/configmaps/plain`), 200)

    const queried = [...new Set(queries.flatMap((q) => parsePromQL(q.expr).metrics))].sort()
    let missing: ReadonlyArray<string> = queried
    await eventually(
      async () => {
        const exposed = await exposedNames()
        missing = queried.filter((name) => !exposed.has(name))
        return missing.length === 0
      },
      () => `queried but not in /metrics: ${missing.join(", ")}`,
      60_000,
    )
  })
})
