/**
 * `npm run demo`: the whole thing on a laptop, with nothing but this repository. Starts a throwaway
 * control plane (the one the tests use), a receiver that prints every payload it gets, and the
 * controller; then creates, changes and deletes a few objects so that each kind of payload shows.
 *
 *   npm run demo            keeps running afterwards: try kubectl with the printed kubeconfig; Ctrl-C stops
 *   npm run demo -- --once  stops by itself after the scripted changes (what CI runs)
 */
import { Duration, Logger, LogLevel } from "effect"
import { expectOk, makeKubeLoad } from "../bench/KubeLoad.js"
import { ControlPlane } from "../kube/ControlPlane.js"
import { startController } from "../support/controller.js"
import { startReceiver } from "../support/Receiver.js"

const once = process.argv.includes("--once")
const say = (line: string) => process.stdout.write(`${line}\n`)
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

const until = async (what: string, probe: () => boolean | Promise<boolean>, timeoutMs = 60_000) => {
  const deadline = Date.now() + timeoutMs
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`demo: timed out waiting for ${what}`)
    await sleep(100)
  }
}

const main = async () => {
  say(
    "▶ starting a throwaway control plane: etcd, kube-apiserver, kube-controller-manager (built from Go modules on first use)",
  )
  const controlPlane = await ControlPlane.start()
  const { info } = controlPlane
  say(`  Kubernetes ${info.kubernetesVersion} at ${info.server}`)

  const receiver = await startReceiver()
  receiver.script = (payload) => {
    const ours = (ids: ReadonlyArray<string>) =>
      ids.filter((id) => id.startsWith("demo/") || id.endsWith("/Namespace/demo"))
    const upserts = ours(payload.upserts.map((u) => u.id))
    const deletes = ours(payload.deletes)
    if (upserts.length + deletes.length > 0) {
      say(`  ← receiver got POST: upserts=${JSON.stringify(upserts)} deletes=${JSON.stringify(deletes)}`)
    }
    return undefined
  }
  say(`▶ a receiver on ${receiver.url} prints what it gets (the demo's own objects only)`)

  say("▶ starting the controller (namespaces, configmaps, services, deployments)")
  const controller = await startController({
    kubeconfig: info.adminKubeconfig,
    receiver,
    endpoints: true,
    logging: Logger.minimumLogLevel(LogLevel.Warning),
    config: {
      watchResourceTypes: ["namespaces", "configmaps", "services", "deployments.apps"],
      debounceWindow: Duration.seconds(1),
      batchFlushInterval: Duration.millis(500),
      healthProbeBindAddress: { host: "127.0.0.1", port: 0 },
      apiBindAddress: { host: "127.0.0.1", port: 0 },
    },
  })
  // The demo's own changes go over plain HTTPS as admin, as kubectl's would: not through the controller.
  const admin = makeKubeLoad(
    { server: info.server, caFile: info.caFile, certFile: info.adminCertFile, keyFile: info.adminKeyFile },
    2,
  )
  const kube = async (method: string, path: string, body?: unknown, contentType?: string) =>
    expectOk(await admin.send(method, path, body, contentType), `${method} ${path}`)
  await until("the controller to be ready", controller.ready)
  say("  ready: every watched type has been listed")

  say("▶ creating namespace demo with a Deployment, a Service and a ConfigMap")
  await kube("POST", "/api/v1/namespaces", { metadata: { name: "demo" } })
  await kube("POST", "/apis/apps/v1/namespaces/demo/deployments", {
    metadata: { name: "web", labels: { app: "web" }, annotations: { description: "Main web server" } },
    spec: {
      replicas: 0,
      selector: { matchLabels: { app: "web" } },
      template: {
        metadata: { labels: { app: "web" } },
        spec: { containers: [{ name: "web", image: "nginx" }] },
      },
    },
  })
  await kube("POST", "/api/v1/namespaces/demo/services", {
    metadata: { name: "web", labels: { app: "web" } },
    spec: { selector: { app: "web" }, ports: [{ port: 80 }] },
  })
  await kube("POST", "/api/v1/namespaces/demo/configmaps", {
    metadata: { name: "settings" },
    data: { a: "b" },
  })
  await until("the objects to arrive", () =>
    ["demo/apps/v1/Deployment/web", "demo/v1/Service/web", "demo/v1/ConfigMap/settings"].every((id) =>
      receiver.state.has(id),
    ),
  )

  say("▶ labelling the Deployment tier=frontend (sent after the 1 s debounce window)")
  await kube(
    "PATCH",
    "/apis/apps/v1/namespaces/demo/deployments/web",
    { metadata: { labels: { tier: "frontend" } } },
    "application/merge-patch+json",
  )
  await until(
    "the label change",
    () => receiver.state.get("demo/apps/v1/Deployment/web")?.labels.tier === "frontend",
  )

  say("▶ deleting the ConfigMap (deletes are not debounced)")
  await kube("DELETE", "/api/v1/namespaces/demo/configmaps/settings")
  await until("the delete", () => !receiver.state.has("demo/v1/ConfigMap/settings"))

  say("▶ what the receiver holds for namespace demo now:")
  for (const [id, record] of [...receiver.state].filter(([id]) => id.startsWith("demo/")).sort()) {
    say(`  ${id}  labels=${JSON.stringify(record.labels)}`)
  }

  const stop = async () => {
    say("▶ stopping: the controller flushes what is pending, then the control plane stops")
    await controller.stop()
    admin.close()
    await receiver.close()
    await controlPlane.stop()
    say("done")
  }
  if (once) return stop()
  say(`▶ still watching. Try: kubectl --kubeconfig ${info.adminKubeconfig} -n demo create configmap hello`)
  say("  Ctrl-C to stop")
  await new Promise<void>((resolve) => {
    process.once("SIGINT", resolve)
    process.once("SIGTERM", resolve)
  })
  await stop()
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(
      `demo failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    )
    process.exit(1)
  },
)
