/**
 * `npm run bench`: the controller at cluster scale, measured from the outside.
 *
 * Starts a throwaway control plane (etcd, kube-apiserver, kube-controller-manager), fills it, then
 * runs the controller under test as a child process (any binary that reads the same environment
 * variables) once per debounce window, against a lean receiver that timestamps what arrives. For
 * each run: time to /readyz, time until every object has arrived, RSS (peak and steady) and CPU
 * time from /proc, heap from /metrics when exposed, requests and bytes per synced object, and a
 * churn phase of label PATCHes (events/s processed, end-to-end lag from the PATCH response to
 * arrival). Prints a Markdown table and JSON, and writes the JSON to a file.
 *
 * Several controllers, and several runs of each, share one control plane and fill per scale point and
 * take turns (A, B, A, B, …), so the load of a shared machine drifts over both alike; the table then
 * shows each figure's median and spread (min–max) per controller, the JSON every run.
 *
 *   npm run bench                                   scale points a, b and c (a: 10,000 ConfigMaps …)
 *   npm run bench -- --scale a --configmaps 2000 --churn 5000   one point, smaller
 *   npm run bench -- --controller "node --cpu-prof --cpu-prof-dir=/tmp/prof dist/main.js"
 *   npm run bench -- --cpu-prof                     profiles each run (node controllers) and summarises
 *   npm run bench -- --scale a --runs 3 --controller "before::node /tmp/old/dist/bundle/main.cjs" \
 *     --controller "after::node dist/bundle/main.cjs"   compares two, three runs each, alternated
 *
 * Flags: --scale list (a,b,c) --configmaps N --namespaces N --deployments N --services N --data-kib N
 * --churn N --crds N --crd-objects N (override the points' fill) --concurrency N (32)
 * --debounce list (10000; one run per value) --controller "[label::]<command line>" (repeatable;
 * unset: the image as it runs: its ENTRYPOINT on Node.js 24 with the bundle, the Dockerfile's ENV
 * and the chart's NODE_OPTIONS, built first)
 * --runs N (1; runs of each controller per point and window) --watch types (unset: the controller's
 * default, every type) --settle seconds (15 at a and b, 45 at c; then until RSS stops falling)
 * --settle-max seconds (90)
 * --out file.json --no-build
 * --cpu-prof (node controllers: profile each run, summarise the top frames)
 * --heap-snapshot (node controllers: one heap snapshot per run in the steady state, summarised)
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from "node:fs"
import { request as httpRequest } from "node:http"
import { createServer } from "node:net"
import * as os from "node:os"
import { join, resolve } from "node:path"
import { ControlPlane } from "../kube/ControlPlane.js"
import { establishedConnections } from "../support/connections.js"
import { awaitWatchCaches, createFleet, type Send } from "../support/crds.js"
import { imageBundle, imageNode, runtimeStage } from "../support/dockerfile.js"
import { type BenchReceiver, CHURN_LABEL, startBenchReceiver } from "./BenchReceiver.js"
import { asCell, type Cell, cell, type Figure, summariseCells } from "./cells.js"
import { renderHeapSummary, summariseHeap } from "./heap.js"
import { expectOk, type KubeLoad, makeKubeLoad, runPool } from "./KubeLoad.js"
import { between, type Sample, sampleTree, startSampler } from "./ProcSampler.js"
import { renderSummary, summarise } from "./profile.js"

// ---- options ------------------------------------------------------------------------------------

const argv = process.argv.slice(2)
const flag = (name: string): string | undefined => {
  const i = argv.indexOf(`--${name}`)
  return i >= 0 ? argv[i + 1] : undefined
}
/** Every value of a flag that may be given more than once, in order. */
const flags = (name: string): Array<string> =>
  argv.flatMap((arg, i) => (arg === `--${name}` && argv[i + 1] !== undefined ? [argv[i + 1]!] : []))
const has = (name: string) => argv.includes(`--${name}`)
const int = (name: string, fallback: number): number => {
  const value = flag(name)
  if (value === undefined) return fallback
  const n = Number(value.replaceAll("_", "").replaceAll(",", ""))
  if (!Number.isInteger(n) || n < 0)
    throw new Error(`--${name}: expected a non-negative integer, got ${value}`)
  return n
}

/**
 * The NODE_OPTIONS the chart gives the pod at its default values, read from `helm template` (helm
 * comes with the test binaries).
 */
const chartNodeOptions = (() => {
  const tools = execFileSync(resolve(import.meta.dirname, "../kube/build.sh"), { encoding: "utf8" }).trim()
  const rendered = execFileSync(
    join(tools, "helm"),
    [
      "template",
      "bench",
      resolve(import.meta.dirname, "../../charts/k8s-vectordb-sync"),
      "--kube-version",
      "v1.36.3",
    ],
    { encoding: "utf8" },
  )
  const match = /name: NODE_OPTIONS\s+value: "?([^"\n]+)"?/.exec(rendered)
  return match?.[1] ?? ""
})()
const imageStage = runtimeStage(readFileSync(resolve(import.meta.dirname, "../../Dockerfile"), "utf8"))
/** The image's one file: where the runtime stage puts it, and where `npm run bundle` writes it here. */
const imageFile = imageBundle(imageStage)

/** A command line that starts with a Node.js binary (`node`, or a path to one), which flags can follow. */
const NODE_COMMAND = /^(?:\S*\/)?node\s/

/** A controller under test: its command line and the label its table columns carry. */
interface Controller {
  readonly label: string
  readonly command: string
  /** Given as `label::<command line>`: the label is shown even when it is the only controller. */
  readonly labelled: boolean
  /** Names its logs and profiles apart from the other controllers'. */
  readonly tag: string
  /** Set in its environment under the bench's own variables (the image's ENV for the default). */
  readonly env?: Readonly<Record<string, string>>
  /** The default: the image's bundle, built first unless --no-build. */
  readonly image?: boolean
}

/**
 * The image as it runs: its ENTRYPOINT on its Node.js (24, not the one running the bench) with the
 * bundle `npm run bundle` writes for the file the runtime stage copies, its ENV, and the chart's
 * NODE_OPTIONS.
 */
const imageController = (): Controller => {
  const [, ...args] = imageStage.entrypoint
  const line = (node: string) =>
    [node, ...args.map((arg) => (arg === imageFile.destination ? imageFile.outfile : arg))].join(" ")
  return {
    label: `${line("node")} (NODE_OPTIONS=${chartNodeOptions})`,
    command: line(imageNode()),
    labelled: false,
    tag: "controller1",
    env: { ...imageStage.env, NODE_OPTIONS: chartNodeOptions },
    image: true,
  }
}

/** `label::<command line>`, or a bare command line, which is then its own label. */
const parseController = (spec: string, index: number): Controller => {
  const at = spec.indexOf("::")
  if (at < 0) return { label: spec, command: spec, labelled: false, tag: `controller${index + 1}` }
  const label = spec.slice(0, at).trim()
  const command = spec.slice(at + 2).trim()
  if (label === "" || command === "") {
    throw new Error(`--controller: expected "label::<command line>" or a command line, got ${spec}`)
  }
  return { label, command, labelled: true, tag: label.replace(/[^\w.-]+/g, "_") }
}

const parseControllers = (specs: ReadonlyArray<string>): ReadonlyArray<Controller> => {
  const controllers = specs.length > 0 ? specs.map(parseController) : [imageController()]
  const labels = controllers.map((c) => c.label)
  const twice = labels.find((label, i) => labels.indexOf(label) !== i)
  // Their runs are told apart by label, in the table and in the JSON.
  if (twice !== undefined)
    throw new Error(`--controller: two controllers labelled ${twice}; label them apart`)
  return controllers
}
const startedIso = new Date().toISOString().replace(/[:.]/g, "-")

/** What one scale point fills the cluster with. */
interface Scale {
  readonly name: string
  readonly title: string
  readonly configmaps: number
  readonly namespaces: number
  readonly deployments: number
  readonly services: number
  readonly dataKiB: number
  readonly churn: number
  /** CustomResourceDefinitions (Crossplane-like: 35 groups, both scopes, small schemas). */
  readonly crds: number
  /** One object in each of the first N of them. */
  readonly crdObjects: number
  /**
   * Least quiet time before steady RSS is read (see `settle`). After (c)'s initial sync RSS stays
   * flat at its peak for half a minute before V8 gives memory back, which a shorter wait would take
   * for settled.
   */
  readonly settleSeconds: number
}

const PRESETS: Record<string, Scale> = {
  a: {
    name: "a",
    title: "today's fill: 13,000 objects and 20,000 changes",
    configmaps: 10_000,
    namespaces: 50,
    deployments: 1_000,
    services: 2_000,
    dataKiB: 4,
    churn: 20_000,
    crds: 0,
    crdObjects: 0,
    settleSeconds: 15,
  },
  b: {
    name: "b",
    title: "1,000 CRDs, one object in each of 200",
    configmaps: 0,
    namespaces: 1,
    deployments: 0,
    services: 0,
    dataKiB: 0,
    churn: 0,
    crds: 1_000,
    crdObjects: 200,
    settleSeconds: 15,
  },
  c: {
    name: "c",
    title: "100,000 ConfigMaps of 1 KiB in 100 namespaces, plus 1,000 CRDs",
    configmaps: 100_000,
    namespaces: 100,
    deployments: 0,
    services: 0,
    dataKiB: 1,
    churn: 0,
    crds: 1_000,
    crdObjects: 200,
    settleSeconds: 45,
  },
}

const optionalInt = (name: string) => (flag(name) === undefined ? undefined : int(name, 0))
const overrides = Object.fromEntries(
  (
    [
      ["configmaps", optionalInt("configmaps")],
      ["namespaces", optionalInt("namespaces")],
      ["deployments", optionalInt("deployments")],
      ["services", optionalInt("services")],
      ["dataKiB", optionalInt("data-kib")],
      ["churn", optionalInt("churn")],
      ["crds", optionalInt("crds")],
      ["crdObjects", optionalInt("crd-objects")],
      ["settleSeconds", optionalInt("settle")],
    ] as const
  ).filter(([, value]) => value !== undefined),
) as Partial<Scale>
const scales: ReadonlyArray<Scale> = (flag("scale") ?? "a,b,c").split(",").map((name) => {
  const preset = PRESETS[name.trim()]
  if (preset === undefined) throw new Error(`--scale: expected a list of a, b, c; got ${name}`)
  const merged = { ...preset, ...overrides }
  return { ...merged, namespaces: Math.max(1, merged.namespaces) }
})
/** The scale point being measured (the fill and the churn read it). */
let scale: Scale = scales[0]!

const options = {
  concurrency: Math.max(1, int("concurrency", 32)),
  debounce: (flag("debounce") ?? "10000").split(",").map((v) => Number(v.trim())),
  controllers: parseControllers(flags("controller")),
  runs: Math.max(1, int("runs", 1)),
  watch: flag("watch"),
  settleMaxSeconds: int("settle-max", 90),
  out: resolve(flag("out") ?? join(os.tmpdir(), "k8s-vectordb-sync-bench", `${startedIso}.json`)),
  cpuProf: has("cpu-prof"),
  heapSnapshot: has("heap-snapshot"),
  build: !has("no-build"),
}
const outDir = resolve(options.out, "..")
const DEFAULT_FLUSH_MS = 5_000
const repo = resolve(import.meta.dirname, "../..")

const say = (line: string) => process.stderr.write(`${line}\n`)
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const round = (n: number, digits = 1) => Math.round(n * 10 ** digits) / 10 ** digits
const seconds = (ms: number) => round(ms / 1000, 2)
const mib = (kib: number) => round(kib / 1024, 1)
const median = (values: ReadonlyArray<number>) => percentile(values, 50)
function percentile(values: ReadonlyArray<number>, p: number): number {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return sorted[rank]!
}

// ---- machine and load -----------------------------------------------------------------------------

const sh = (cmd: string, args: ReadonlyArray<string>) => {
  try {
    return execFileSync(cmd, args, { encoding: "utf8" }).trim()
  } catch {
    return "(unavailable)"
  }
}

/** Other heavy processes on this shared machine: test runners and control planes that are not ours. */
const othersRunning = (ownDir: string | undefined): Array<string> => {
  const found: Array<string> = []
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue
    try {
      const cmd = readFileSync(`/proc/${entry}/cmdline`, "utf8").replaceAll("\0", " ").trim()
      if (ownDir !== undefined && cmd.includes(ownDir)) continue
      if (/vitest|kube-apiserver|\betcd\b|kube-controller-manager|\btsc\b|go build/.test(cmd)) {
        found.push(`${entry}: ${cmd.slice(0, 120)}`)
      }
    } catch {
      // gone
    }
  }
  return found
}

/** CPU seconds used so far by the control plane's processes (etcd, kube-apiserver, kube-controller-manager). */
const planeCpuSeconds = (dir: string): number => {
  let total = 0
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue
    try {
      if (!readFileSync(`/proc/${entry}/cmdline`, "utf8").includes(dir)) continue
      total += sampleTree(Number(entry))?.cpuSeconds ?? 0
    } catch {
      // gone
    }
  }
  return total
}

const loadNow = (ownDir?: string) => ({
  loadavg: os.loadavg().map((l) => round(l, 2)),
  others: othersRunning(ownDir),
})

// ---- small HTTP helpers -------------------------------------------------------------------------------

const freePort = () =>
  new Promise<number>((resolvePort, reject) => {
    const server = createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as { port: number }).port
      server.close(() => resolvePort(port))
    })
  })

const httpGet = (url: string, timeoutMs = 2_000) =>
  new Promise<{ status: number; body: string }>((resolveGet, reject) => {
    const req = httpRequest(url, { agent: false, timeout: timeoutMs }, (res) => {
      let body = ""
      res.setEncoding("utf8").on("data", (chunk: string) => {
        body += chunk
      })
      res.on("end", () => resolveGet({ status: res.statusCode ?? 0, body }))
    })
    req.on("timeout", () => req.destroy(new Error("timeout")))
    req.on("error", reject)
    req.end()
  })

/** Sum of every series of `name` in Prometheus text, or undefined when the metric is absent. */
const metricSum = (text: string, name: string): number | undefined => {
  let sum: number | undefined
  for (const line of text.split("\n")) {
    if (line.startsWith("#")) continue
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{[^}]*\})?\s+(\S+)/.exec(line)
    if (match?.[1] === name) sum = (sum ?? 0) + Number(match[2])
  }
  return sum
}

// ---- the fill --------------------------------------------------------------------------------------

const nsName = (i: number) => `bench-${i}`
const cmName = (i: number) => `cm-${i}`
const cmNamespace = (i: number) => nsName(i % scale.namespaces)

const fill = async (kube: KubeLoad): Promise<{ expected: Set<string>; ms: number; objects: number }> => {
  const expected = new Set<string>()
  const t0 = performance.now()
  await runPool(scale.namespaces, options.concurrency, async (i) => {
    const res = await kube.send("POST", "/api/v1/namespaces", { metadata: { name: nsName(i) } })
    expectOk(res, `namespace ${nsName(i)}`, [201, 409])
  })
  const data = { payload: "x".repeat(scale.dataKiB * 1024) }
  const labels = (i: number, app: string) => ({ app, tier: `t${i % 5}`, "bench-index": String(i) })
  const annotations = { description: "benchmark object", "kubernetes.io/description": "filtered out" }
  type Task = () => Promise<void>
  const tasks: Array<Task> = []
  for (let i = 0; i < scale.configmaps; i++) {
    const ns = cmNamespace(i)
    expected.add(`${ns}/v1/ConfigMap/${cmName(i)}`)
    tasks.push(async () => {
      const res = await kube.send("POST", `/api/v1/namespaces/${ns}/configmaps`, {
        metadata: { name: cmName(i), labels: labels(i, "config"), annotations },
        data,
      })
      expectOk(res, `configmap ${ns}/${cmName(i)}`, [201, 409])
    })
  }
  for (let i = 0; i < scale.deployments; i++) {
    const ns = nsName(i % scale.namespaces)
    const name = `deploy-${i}`
    expected.add(`${ns}/apps/v1/Deployment/${name}`)
    tasks.push(async () => {
      const res = await kube.send("POST", `/apis/apps/v1/namespaces/${ns}/deployments`, {
        metadata: { name, labels: labels(i, name), annotations },
        spec: {
          replicas: 1,
          selector: { matchLabels: { app: name } },
          template: {
            metadata: { labels: { app: name } },
            spec: { containers: [{ name: "app", image: "app:1", ports: [{ containerPort: 8080 }] }] },
          },
        },
      })
      expectOk(res, `deployment ${ns}/${name}`, [201, 409])
    })
  }
  for (let i = 0; i < scale.services; i++) {
    const ns = nsName(i % scale.namespaces)
    const name = `svc-${i}`
    expected.add(`${ns}/v1/Service/${name}`)
    tasks.push(async () => {
      const res = await kube.send("POST", `/api/v1/namespaces/${ns}/services`, {
        metadata: { name, labels: labels(i, name), annotations },
        spec: { selector: { app: name }, ports: [{ port: 80, targetPort: 8080 }] },
      })
      expectOk(res, `service ${ns}/${name}`, [201, 409])
    })
  }
  let done = 0
  await runPool(tasks.length, options.concurrency, async (i) => {
    await tasks[i]!()
    if (++done % 10_000 === 0) say(`  … ${done}/${tasks.length} created`)
  })
  let crdObjects = 0
  if (scale.crds > 0) {
    const send: Send = (method, path, body) =>
      kube
        .send(method, path, body, "application/json", true)
        .then((r) => ({ status: r.status, text: r.body }))
    const fleet = await createFleet(send, {
      prefix: "bench",
      count: scale.crds,
      withObjects: scale.crdObjects,
      namespace: nsName(0),
      progress: say,
    })
    for (const id of fleet.ids) expected.add(id)
    crdObjects = fleet.ids.length
    await awaitWatchCaches(send, fleet.types, nsName(0))
  }
  return {
    expected,
    ms: performance.now() - t0,
    objects: tasks.length + scale.namespaces + scale.crds + crdObjects,
  }
}

// ---- one run of the controller ------------------------------------------------------------------

interface ChurnResult {
  readonly patches: number
  readonly patchSeconds: number
  readonly patchesPerSecond: number
  readonly eventsObserved: number | undefined
  /** Events the watches observed per second, from start of churn until the counter stopped rising. */
  readonly eventsObservedPerSecond: number | undefined
  /** How long after the last PATCH acknowledgement the watch counter reached its final value (≈ 1 s resolution). */
  readonly watchCaughtUpAfterLastAckSeconds: number | undefined
  readonly processingSeconds: number
  /** Last churn arrival minus last acknowledgement: debounce, the flush window of the tail, and any backlog. */
  readonly deliveredAfterLastAckSeconds: number
  /** CPU of this bench process (PATCH client and receiver) meanwhile: it shares the machine. */
  readonly benchProcessCpuSeconds: number
  /** CPU of etcd + kube-apiserver + kube-controller-manager meanwhile: who the bottleneck is. */
  readonly controlPlaneCpuSeconds: number
  readonly cpuSeconds: number
  readonly cpuSecondsPer1000Events: number
  readonly versionsArrived: number
  readonly versionsCoalesced: number
  readonly lagMs: { p50: number; p95: number; p99: number; max: number }
  readonly lagMinusDebounceMs: { p50: number; p95: number; p99: number; max: number }
  readonly requests: number
  readonly bodyBytes: number
  readonly peakRssMiB: number
}

interface RunResult {
  /** The controller's label (its command line when unlabelled), and which of its --runs this was, from 1. */
  readonly controller: string
  readonly command: string
  readonly run: number
  readonly debounceWindowMs: number
  readonly batchFlushIntervalMs: number
  readonly loadAtStart: ReturnType<typeof loadNow>
  readonly readySeconds: number
  /** CPU seconds from spawn to /readyz 200. */
  readonly readyCpuSeconds: number
  /** Established TCP connections to the API server: most seen (1 s samples), and in the steady state. */
  readonly apiServerConnections: { readonly peak: number; readonly steady: number }
  readonly initialSync: {
    readonly objectsExpected: number
    readonly idsReceived: number
    readonly p50ArrivalSeconds: number
    readonly p99ArrivalSeconds: number
    readonly allArrivedSeconds: number
    readonly cpuSeconds: number
    readonly requests: number
    readonly bodyBytes: number
    readonly wireBytes: number
    readonly requestsPerObject: number
    readonly bodyBytesPerObject: number
    readonly wireBytesPerObject: number
  }
  readonly memory: {
    readonly peakRssMiB: number
    readonly steadyRssAfterSyncMiB: number
    readonly steadyRssAfterChurnMiB: number | undefined
    /** Seconds until RSS had stopped falling (see `settle`). */
    readonly settledAfterSyncSeconds: number
    readonly settledAfterChurnSeconds: number | undefined
    readonly heapUsedAfterSyncMiB: number | undefined
    readonly heapUsedAfterChurnMiB: number | undefined
    readonly heapNote: string
  }
  readonly churn: ChurnResult | undefined
  readonly exit: { code: number | null; signal: string | null; stopSeconds: number }
  readonly profile: string | undefined
  readonly heap: string | undefined
  readonly log: string
}

const lagStats = (lags: ReadonlyArray<number>) => ({
  p50: Math.round(percentile(lags, 50)),
  p95: Math.round(percentile(lags, 95)),
  p99: Math.round(percentile(lags, 99)),
  max: Math.round(lags.reduce((a, b) => Math.max(a, b), Number.NEGATIVE_INFINITY)),
})

let churnSeq = 0
const children = new Set<ChildProcess>()
process.on("exit", () => {
  for (const child of children) child.kill("SIGKILL")
})

const waitFor = async (what: string, timeoutMs: number, probe: () => boolean | Promise<boolean>) => {
  const deadline = performance.now() + timeoutMs
  while (!(await probe())) {
    if (performance.now() > deadline)
      throw new Error(`bench: timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(50)
  }
}

/** Whether runs are told apart in file names and headings: more than one controller, or run, each. */
const several = () => options.controllers.length > 1 || options.runs > 1

const runController = async (
  plane: ControlPlane,
  kube: KubeLoad,
  expected: ReadonlySet<string>,
  debounceWindowMs: number,
  controller: Controller,
  run: number,
): Promise<RunResult> => {
  const loadAtStart = loadNow(plane.info.dir)
  const receiver: BenchReceiver = await startBenchReceiver(expected)
  const healthPort = await freePort()
  const apiPort = await freePort()
  const which = `${scale.name}-debounce-${debounceWindowMs}${several() ? `-${controller.tag}-run${run}` : ""}`
  const log = join(outDir, `controller-${which}.log`)
  const profDir = join(outDir, `prof-${which}`)
  let command = controller.command
  if (options.cpuProf && NODE_COMMAND.test(command)) {
    mkdirSync(profDir, { recursive: true })
    command = command.replace(NODE_COMMAND, (node) => `${node}--cpu-prof --cpu-prof-dir=${profDir} `)
  }
  if (options.heapSnapshot && NODE_COMMAND.test(command)) {
    mkdirSync(profDir, { recursive: true })
    command = command.replace(
      NODE_COMMAND,
      (node) => `${node}--heapsnapshot-signal=SIGUSR2 --diagnostic-dir=${profDir} `,
    )
  }
  const env: Record<string, string> = {
    ...controller.env,
    PATH: process.env.PATH ?? "",
    HOME: process.env.HOME ?? "/tmp",
    KUBECONFIG: plane.info.adminKubeconfig,
    INSTANCES_ENDPOINT: receiver.url,
    DEBOUNCE_WINDOW_MS: String(debounceWindowMs),
    HEALTH_PROBE_BIND_ADDRESS: `127.0.0.1:${healthPort}`,
    API_BIND_ADDRESS: `127.0.0.1:${apiPort}`,
  }
  if (options.watch !== undefined) env.WATCH_RESOURCE_TYPES = options.watch
  const fd = openSync(log, "w")
  // exec: the shell becomes the controller, so the pid we sample is the controller's.
  const child = spawn("/bin/sh", ["-c", `exec ${command}`], { cwd: repo, env, stdio: ["ignore", fd, fd] })
  closeSync(fd)
  children.add(child)
  const exited = new Promise<{ code: number | null; signal: string | null }>((r) =>
    child.once("exit", (code, signal) => r({ code, signal })),
  )
  const t0 = performance.now()
  const sampler = startSampler(child.pid!)
  const apiServerPort = Number(new URL(plane.info.server).port)
  const connectionsNow = () => {
    try {
      return establishedConnections(child.pid!, apiServerPort)
    } catch {
      return 0 // exited meanwhile
    }
  }
  let peakConnections = 0
  const connectionSampler = setInterval(() => {
    peakConnections = Math.max(peakConnections, connectionsNow())
  }, 1_000)
  const alive = () => {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`controller exited (${child.exitCode ?? child.signalCode}); see ${log}`)
    }
  }
  const metrics = async () => {
    try {
      const res = await httpGet(`http://127.0.0.1:${apiPort}/metrics`)
      return res.status === 200 ? res.body : ""
    } catch {
      return ""
    }
  }
  const heapMiB = (text: string) => {
    const bytes = metricSum(text, "nodejs_heap_size_used_bytes")
    return bytes === undefined ? undefined : round(bytes / 1024 / 1024, 1)
  }

  try {
    // ---- initial sync
    let readyAt = 0
    let readyCpu = 0
    const ready = waitFor("/readyz", 15 * 60_000, async () => {
      alive()
      const res = await httpGet(`http://127.0.0.1:${healthPort}/readyz`).catch(() => undefined)
      if (res?.status !== 200) return false
      readyAt = performance.now()
      readyCpu = sampler.now().cpuSeconds
      return true
    })
    await waitFor("every object at the receiver", 15 * 60_000, () => {
      alive()
      return receiver.expectedSeen().count >= expected.size
    })
    const syncSample = sampler.now()
    await ready
    const syncedAt = receiver.expectedSeen().lastAt
    const arrivals = [...expected].map((id) => receiver.firstSeen.get(id)! - t0)
    const syncCounters = { ...receiver.counters }
    const idsReceived = receiver.firstSeen.size
    say(
      `  ready ${seconds(readyAt - t0)} s, all ${expected.size} objects arrived ${seconds(syncedAt - t0)} s, ` +
        `cpu ${round(syncSample.cpuSeconds, 2)} s, rss ${mib(syncSample.rssKiB)} MiB`,
    )

    // ---- settle: steady memory after the initial sync
    // V8 gives memory back well after the work ends (its memory reducer waits for a quiet spell),
    // so a fixed wait catches RSS halfway down: wait at least --settle seconds, then until two
    // 5-second medians in a row agree within 2 MiB twice over, at most --settle-max seconds.
    const settle = async () => {
      const from = performance.now()
      const medianOfLast5s = () =>
        median(
          between(sampler.samples, Math.max(from, performance.now() - 5_000), performance.now()).map(
            (s) => s.rssKiB,
          ),
        )
      await sleep(scale.settleSeconds * 1000)
      alive()
      let rssKiB = medianOfLast5s()
      let stableFor = 0
      while (stableFor < 2 && performance.now() - from < options.settleMaxSeconds * 1000) {
        await sleep(5_000)
        alive()
        const next = medianOfLast5s()
        stableFor = Math.abs(next - rssKiB) < 2048 ? stableFor + 1 : 0
        rssKiB = next
      }
      return { rssKiB, seconds: Math.round((performance.now() - from) / 1000) }
    }
    const settledAfterSync = await settle()
    const steadyAfterSync = settledAfterSync.rssKiB
    const heapAfterSync = heapMiB(await metrics())
    const steadyConnections = connectionsNow()
    say(
      `  steady rss after sync ${mib(steadyAfterSync)} MiB (settled after ${settledAfterSync.seconds} s), heap ${heapAfterSync ?? "n/a"} MiB`,
    )

    // ---- churn
    let churn: ChurnResult | undefined
    let steadyAfterChurn: number | undefined
    let settledAfterChurnSeconds: number | undefined
    let heapAfterChurn: number | undefined
    if (scale.churn > 0 && scale.configmaps > 0) {
      const before = { ...receiver.counters }
      const eventsBefore = metricSum(await metrics(), "vectordb_sync_watch_events_total")
      const acks = new Map<string, number>()
      const latest = new Map<string, number>()
      const firstSeq = churnSeq
      churnSeq += scale.churn
      const churnStart = performance.now()
      const cpuStart = sampler.now().cpuSeconds
      const benchCpuStart = process.cpuUsage()
      const planeCpuStart = planeCpuSeconds(plane.info.dir)
      // The watch side's progress, from the controller's own counter: when did it observe the last event?
      const observed: Array<readonly [number, number]> = []
      let polling = true
      const poller = (async () => {
        while (polling) {
          const at = performance.now()
          const value = metricSum(await metrics(), "vectordb_sync_watch_events_total")
          if (value !== undefined) observed.push([at, value])
          await sleep(1_000)
        }
      })()
      let lastAck = churnStart
      await runPool(scale.churn, options.concurrency, async (k) => {
        const seq = firstSeq + k
        const i = k % scale.configmaps
        const ns = cmNamespace(i)
        const id = `${ns}/v1/ConfigMap/${cmName(i)}`
        latest.set(id, seq)
        const res = await kube.send(
          "PATCH",
          `/api/v1/namespaces/${ns}/configmaps/${cmName(i)}`,
          { metadata: { labels: { [CHURN_LABEL]: String(seq) } } },
          "application/merge-patch+json",
        )
        expectOk(res, `patch ${id}`, [200])
        acks.set(`${id}#${seq}`, res.ackAt)
        if (res.ackAt > lastAck) lastAck = res.ackAt
      })
      const patchSeconds = (lastAck - churnStart) / 1000
      say(`  churn: ${scale.churn} PATCHes acknowledged in ${round(patchSeconds, 2)} s`)
      await waitFor(
        "every churn version at the receiver",
        debounceWindowMs + DEFAULT_FLUSH_MS + 10 * 60_000,
        () => {
          alive()
          for (const [id, seq] of latest) if ((receiver.churnSeen.get(id) ?? -1) < seq) return false
          return true
        },
      )
      const cpuEnd = sampler.now().cpuSeconds
      const benchCpu = process.cpuUsage(benchCpuStart)
      const planeCpu = planeCpuSeconds(plane.info.dir) - planeCpuStart
      polling = false
      await poller
      // The poller may have last looked up to 250 ms before the last arrival: one final reading.
      const final = metricSum(await metrics(), "vectordb_sync_watch_events_total")
      if (final !== undefined) observed.push([performance.now(), final])
      const lags: Array<number> = []
      let doneAt = churnStart
      for (const [id, seq, at] of receiver.churnArrivals) {
        if (seq < firstSeq) continue
        const ack = acks.get(`${id}#${seq}`)
        if (ack === undefined) continue
        lags.push(at - ack)
        if (at > doneAt) doneAt = at
      }
      // The last value the poller saw is final: every churn version had arrived by then.
      const eventsAfter =
        observed.at(-1)?.[1] ?? metricSum(await metrics(), "vectordb_sync_watch_events_total")
      const events =
        eventsBefore !== undefined && eventsAfter !== undefined ? eventsAfter - eventsBefore : undefined
      const processingSeconds = (doneAt - churnStart) / 1000
      const eventCount = events ?? scale.churn
      const observedDoneAt =
        eventsAfter === undefined ? undefined : observed.find(([, value]) => value >= eventsAfter)?.[0]
      const cpu = cpuEnd - cpuStart
      const churnSamples = between(sampler.samples, churnStart, performance.now())
      churn = {
        patches: scale.churn,
        patchSeconds: round(patchSeconds, 2),
        patchesPerSecond: Math.round(scale.churn / patchSeconds),
        eventsObserved: events,
        eventsObservedPerSecond:
          observedDoneAt === undefined
            ? undefined
            : Math.round(eventCount / Math.max(0.001, (observedDoneAt - churnStart) / 1000)),
        watchCaughtUpAfterLastAckSeconds:
          observedDoneAt === undefined ? undefined : round(Math.max(0, observedDoneAt - lastAck) / 1000, 2),
        processingSeconds: round(processingSeconds, 2),
        deliveredAfterLastAckSeconds: round((doneAt - lastAck) / 1000, 2),
        benchProcessCpuSeconds: round((benchCpu.user + benchCpu.system) / 1e6, 2),
        controlPlaneCpuSeconds: round(planeCpu, 2),
        cpuSeconds: round(cpu, 2),
        cpuSecondsPer1000Events: round((cpu / eventCount) * 1000, 3),
        versionsArrived: lags.length,
        versionsCoalesced: scale.churn - lags.length,
        lagMs: lagStats(lags),
        lagMinusDebounceMs: lagStats(lags.map((l) => l - debounceWindowMs)),
        requests: receiver.counters.requests - before.requests,
        bodyBytes: receiver.counters.bodyBytes - before.bodyBytes,
        peakRssMiB: mib(Math.max(...churnSamples.map((s) => s.rssKiB))),
      }
      say(
        `  churn: processed in ${churn.processingSeconds} s, ` +
          `lag p50/p95/p99 ${churn.lagMs.p50}/${churn.lagMs.p95}/${churn.lagMs.p99} ms, cpu ${churn.cpuSeconds} s, ` +
          `watch ${churn.eventsObservedPerSecond ?? "n/a"} events/s (caught up ${churn.watchCaughtUpAfterLastAckSeconds ?? "n/a"} s after the last ack)`,
      )
      const settledAfterChurn = await settle()
      steadyAfterChurn = settledAfterChurn.rssKiB
      settledAfterChurnSeconds = settledAfterChurn.seconds
      heapAfterChurn = heapMiB(await metrics())
      say(
        `  steady rss after churn ${mib(steadyAfterChurn)} MiB (settled after ${settledAfterChurnSeconds} s), heap ${heapAfterChurn ?? "n/a"} MiB`,
      )
    }

    // ---- heap snapshot in the steady state (after churn when there was churn)
    let heapFile: string | undefined
    if (options.heapSnapshot && existsSync(profDir)) {
      child.kill("SIGUSR2")
      let lastSize = -1
      await waitFor("the heap snapshot", 5 * 60_000, async () => {
        await sleep(1_000)
        const file = readdirSync(profDir).find((f) => f.endsWith(".heapsnapshot"))
        if (file === undefined) return false
        const size = statSync(join(profDir, file)).size
        const stable = size > 0 && size === lastSize
        lastSize = size
        if (stable) heapFile = join(profDir, file)
        return stable
      })
    }

    // ---- stop
    clearInterval(connectionSampler)
    const last = sampler.now()
    const stopAt = performance.now()
    child.kill("SIGTERM")
    const timer = setTimeout(() => child.kill("SIGKILL"), 30_000)
    const exit = await exited
    clearTimeout(timer)
    children.delete(child)
    sampler.stop()
    const peak = Math.max(last.hwmKiB, ...sampler.samples.map((s: Sample) => s.rssKiB))

    let profile: string | undefined
    if (options.cpuProf && existsSync(profDir)) {
      const file = readdirSync(profDir).find((f) => f.endsWith(".cpuprofile"))
      if (file !== undefined) {
        profile = renderSummary(summarise(JSON.parse(readFileSync(join(profDir, file), "utf8")), 20))
        profile = `${join(profDir, file)}\n\n${profile}`
      }
    }

    let heap: string | undefined
    if (heapFile !== undefined) {
      heap = `${heapFile}\n\n${renderHeapSummary(summariseHeap(JSON.parse(readFileSync(heapFile, "utf8")), 20))}`
    }

    const objects = Math.max(1, idsReceived)
    return {
      controller: controller.label,
      command: controller.command,
      run,
      debounceWindowMs,
      batchFlushIntervalMs: DEFAULT_FLUSH_MS,
      loadAtStart,
      readySeconds: seconds(readyAt - t0),
      readyCpuSeconds: round(readyCpu, 2),
      apiServerConnections: { peak: Math.max(peakConnections, steadyConnections), steady: steadyConnections },
      initialSync: {
        objectsExpected: expected.size,
        idsReceived,
        p50ArrivalSeconds: seconds(percentile(arrivals, 50)),
        p99ArrivalSeconds: seconds(percentile(arrivals, 99)),
        allArrivedSeconds: seconds(syncedAt - t0),
        cpuSeconds: round(syncSample.cpuSeconds, 2),
        requests: syncCounters.requests,
        bodyBytes: syncCounters.bodyBytes,
        wireBytes: syncCounters.wireBytes,
        requestsPerObject: round(syncCounters.requests / objects, 4),
        bodyBytesPerObject: Math.round(syncCounters.bodyBytes / objects),
        wireBytesPerObject: Math.round(syncCounters.wireBytes / objects),
      },
      memory: {
        peakRssMiB: mib(peak),
        steadyRssAfterSyncMiB: mib(steadyAfterSync),
        steadyRssAfterChurnMiB: steadyAfterChurn === undefined ? undefined : mib(steadyAfterChurn),
        settledAfterSyncSeconds: settledAfterSync.seconds,
        settledAfterChurnSeconds,
        heapUsedAfterSyncMiB: heapAfterSync,
        heapUsedAfterChurnMiB: heapAfterChurn,
        heapNote:
          heapAfterSync === undefined
            ? "the controller's /metrics has no nodejs_heap_size_used_bytes"
            : "nodejs_heap_size_used_bytes from /metrics",
      },
      churn,
      exit: { ...exit, stopSeconds: seconds(performance.now() - stopAt) },
      profile,
      heap,
      log,
    }
  } finally {
    clearInterval(connectionSampler)
    sampler.stop()
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
    await receiver.close()
  }
}

// ---- report -----------------------------------------------------------------------------------------

/** Whether the columns carry the controllers' labels: when there are several, or one was labelled. */
const showLabels = () => options.controllers.length > 1 || options.controllers.some((c) => c.labelled)

/** A column's heading: the window, after the controller's label when labels are shown. */
const columnName = (r: RunResult) =>
  `${showLabels() ? `${r.controller}, ` : ""}DEBOUNCE_WINDOW_MS=${r.debounceWindowMs}`

/** Names one run (of a profile or heap summary): its column, and which run when there are several. */
const runName = (r: RunResult) => `${columnName(r)}${options.runs > 1 ? `, run ${r.run}` : ""}`

/** The runs of each column, one column per controller and window, in the order they first ran. */
const columnsOf = (runs: ReadonlyArray<RunResult>): Array<Array<RunResult>> => {
  const columns = new Map<string, Array<RunResult>>()
  for (const r of runs) {
    const key = JSON.stringify([r.controller, r.debounceWindowMs])
    columns.set(key, [...(columns.get(key) ?? []), r])
  }
  return [...columns.values()]
}

const markdown = (report: {
  machine: Record<string, unknown>
  fill: Record<string, unknown>
  runs: ReadonlyArray<RunResult>
}): string => {
  const columns = columnsOf(report.runs)
  // A row no run has a figure for (the churn rows of a point without churn) is left out; with several
  // runs a column shows each figure's median and spread.
  const row = (label: string, figure: (r: RunResult) => Cell | Figure) => {
    const cells = columns.map((runs) => runs.map((r) => asCell(figure(r))))
    return cells.every((column) => column.every((c) => c === undefined))
      ? undefined
      : `| ${label} | ${cells.map(summariseCells).join(" | ")} |`
  }
  const c = (r: RunResult) => r.churn
  return [
    `| metric | ${columns.map((runs) => columnName(runs[0]!)).join(" | ")} |`,
    `| --- | ${columns.map(() => "---:").join(" | ")} |`,
    row("load average at start (1/5/15 min)", (r) => {
      const [one, five, fifteen] = r.loadAtStart.loadavg
      return cell`${one} / ${five} / ${fifteen}`
    }),
    row(
      "objects created / distinct ids received",
      (r) => cell`${r.initialSync.objectsExpected} / ${r.initialSync.idsReceived}`,
    ),
    row("time to ready (/readyz 200), s", (r) => r.readySeconds),
    row("CPU to ready, s", (r) => r.readyCpuSeconds),
    row(
      "established connections to the API server (peak / steady)",
      (r) => cell`${r.apiServerConnections.peak} / ${r.apiServerConnections.steady}`,
    ),
    row(
      "initial sync: 50% / 99% of objects arrived, s",
      (r) => cell`${r.initialSync.p50ArrivalSeconds} / ${r.initialSync.p99ArrivalSeconds}`,
    ),
    row("initial sync: every object arrived, s", (r) => r.initialSync.allArrivedSeconds),
    row("CPU for the initial sync (start → all arrived), s", (r) => r.initialSync.cpuSeconds),
    row("requests per synced object", (r) => r.initialSync.requestsPerObject),
    row(
      "bytes per synced object (body / with headers)",
      (r) => cell`${r.initialSync.bodyBytesPerObject} / ${r.initialSync.wireBytesPerObject}`,
    ),
    row("peak RSS, MiB", (r) => r.memory.peakRssMiB),
    row(
      "steady RSS after sync / after churn, MiB",
      (r) => cell`${r.memory.steadyRssAfterSyncMiB} / ${r.memory.steadyRssAfterChurnMiB}`,
    ),
    row(
      "RSS settled after (sync / churn), s",
      (r) => cell`${r.memory.settledAfterSyncSeconds} / ${r.memory.settledAfterChurnSeconds}`,
    ),
    row(
      "heap used after sync / after churn, MiB",
      (r) => cell`${r.memory.heapUsedAfterSyncMiB} / ${r.memory.heapUsedAfterChurnMiB}`,
    ),
    row("churn: label PATCHes acknowledged by the API server, /s", (r) => c(r)?.patchesPerSecond),
    row("churn: watch events observed by the controller", (r) => c(r)?.eventsObserved),
    row("churn: events observed by the watches, /s", (r) => c(r)?.eventsObservedPerSecond),
    row(
      "churn: watches caught up after the last PATCH ack, s",
      (r) => c(r)?.watchCaughtUpAfterLastAckSeconds,
    ),
    row(
      "churn: last version delivered after the last PATCH ack, s",
      (r) => c(r)?.deliveredAfterLastAckSeconds,
    ),
    row("churn: CPU per 1,000 change events, s", (r) => c(r)?.cpuSecondsPer1000Events),
    row(
      "churn: lag PATCH response → receiver p50 / p95 / p99 / max, ms",
      (r) => c(r) && cell`${c(r)!.lagMs.p50} / ${c(r)!.lagMs.p95} / ${c(r)!.lagMs.p99} / ${c(r)!.lagMs.max}`,
    ),
    row(
      "churn: same, minus the debounce window, ms",
      (r) =>
        c(r) &&
        cell`${c(r)!.lagMinusDebounceMs.p50} / ${c(r)!.lagMinusDebounceMs.p95} / ${c(r)!.lagMinusDebounceMs.p99}`,
    ),
    row(
      "churn: versions delivered / coalesced away",
      (r) => c(r) && cell`${c(r)!.versionsArrived} / ${c(r)!.versionsCoalesced}`,
    ),
    row(
      "churn: requests, bytes per event",
      (r) =>
        c(r) && cell`${c(r)!.requests}, ${Math.round(c(r)!.bodyBytes / Math.max(1, c(r)!.versionsArrived))}`,
    ),
    row("churn: peak RSS during churn, MiB", (r) => c(r)?.peakRssMiB),
    row(
      "churn: CPU s of controller / control plane (etcd, apiserver, kcm) / bench process",
      (r) =>
        c(r) && cell`${c(r)!.cpuSeconds} / ${c(r)!.controlPlaneCpuSeconds} / ${c(r)!.benchProcessCpuSeconds}`,
    ),
    row("SIGTERM → exit (code), s", (r) => cell`${r.exit.stopSeconds} (${r.exit.code ?? r.exit.signal})`),
  ]
    .filter((line) => line !== undefined)
    .join("\n")
}

// ---- main ----------------------------------------------------------------------------------------------

const main = async () => {
  mkdirSync(outDir, { recursive: true })
  const machine = {
    command: `npm run bench --${argv.length > 0 ? ` ${argv.map((a) => (/\s/.test(a) ? JSON.stringify(a) : a)).join(" ")}` : ""}`,
    date: new Date().toISOString(),
    nproc: os.availableParallelism(),
    cpuModel: os.cpus()[0]?.model ?? "unknown",
    memory: sh("free", ["-h"]),
    node: process.version,
    controllerNode: sh("node", ["--version"]),
    uptime: sh("uptime", []),
    loadAtStart: loadNow(),
  }
  say(`▶ bench: ${JSON.stringify({ ...options, out: undefined })}`)
  say(`  machine: ${machine.nproc} CPUs, load ${machine.loadAtStart.loadavg.join(" ")}`)
  if (machine.loadAtStart.others.length > 0) {
    say(
      `  other heavy processes now (figures will be noisier):\n    ${machine.loadAtStart.others.join("\n    ")}`,
    )
  }
  if (options.build && options.controllers.some((c) => c.image === true)) {
    say("▶ building the image's bundle (npm run bundle)")
    execFileSync("npm", ["run", "--silent", "bundle"], { cwd: repo, stdio: "inherit" })
  }

  const points: Array<{ scale: Scale; fill: Record<string, unknown>; runs: Array<RunResult> }> = []
  for (const point of scales) {
    scale = point
    say(`\n▶ scale point (${scale.name}): ${scale.title}`)
    say("▶ starting the control plane")
    const plane = await ControlPlane.start({
      // 2,000 Services need ClusterIPs: the harness's /24 holds 254.
      apiServerFlags: ["--service-cluster-ip-range=10.0.0.0/16"],
    })
    const kube = makeKubeLoad(
      {
        server: plane.info.server,
        caFile: plane.info.caFile,
        certFile: plane.info.adminCertFile,
        keyFile: plane.info.adminKeyFile,
      },
      options.concurrency,
    )
    try {
      say(
        `▶ filling: ${scale.configmaps} ConfigMaps (${scale.dataKiB} KiB each), ${scale.deployments} Deployments, ` +
          `${scale.services} Services in ${scale.namespaces} namespaces, ${scale.crds} CRDs with an object in ` +
          `${scale.crdObjects}; ${options.concurrency} requests in flight`,
      )
      const filled = await fill(kube)
      const fillInfo = {
        objects: filled.objects,
        seconds: seconds(filled.ms),
        createsPerSecond: Math.round(filled.objects / (filled.ms / 1000)),
        kubernetes: plane.info.kubernetesVersion,
      }
      say(`  ${filled.objects} objects in ${fillInfo.seconds} s (${fillInfo.createsPerSecond}/s)`)
      const runs: Array<RunResult> = []
      for (const debounce of options.debounce) {
        for (let run = 1; run <= options.runs; run++) {
          // Controllers take turns (A, B, A, B, …) rather than each running its N in a row: load on the
          // shared machine drifts over a point, and turns spread the drift over all of them alike.
          for (const controller of options.controllers) {
            const which = several() ? ` ${run}/${options.runs} of ${controller.label}` : ""
            say(`▶ controller run${which}, DEBOUNCE_WINDOW_MS=${debounce}: ${controller.command}`)
            runs.push(await runController(plane, kube, filled.expected, debounce, controller, run))
          }
        }
      }
      points.push({ scale, fill: fillInfo, runs })
    } finally {
      kube.close()
      await plane.stop()
    }
  }

  const report = {
    machine: { ...machine, loadAtEnd: loadNow(), uptimeAtEnd: sh("uptime", []) },
    options: { ...options },
    points,
  }
  writeFileSync(options.out, `${JSON.stringify(report, null, 2)}\n`)
  const medians =
    options.runs > 1
      ? `each cell: the median of ${options.runs} runs and (min–max) where they differ; every run in the JSON\n\n`
      : ""
  for (const point of points) {
    process.stdout.write(
      `\n### (${point.scale.name}) ${point.scale.title}\n\nfill: ${JSON.stringify(point.fill)}\n\n${medians}` +
        `${markdown({ machine, fill: point.fill, runs: point.runs })}\n`,
    )
    for (const run of point.runs) {
      if (run.profile !== undefined) process.stdout.write(`\nCPU profile, ${runName(run)}: ${run.profile}\n`)
      if (run.heap !== undefined) process.stdout.write(`\nHeap, ${runName(run)}: ${run.heap}\n`)
    }
  }
  say(`\n▶ JSON written to ${options.out}`)
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    say(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`)
    process.exit(1)
  },
)
