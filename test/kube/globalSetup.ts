/**
 * vitest global setup of the "integration" project: one real control plane per `vitest run`.
 *
 * Tests run in worker processes and cannot hold the ControlPlane object, so besides `provide`-ing
 * the connection details this starts a small HTTP control server on 127.0.0.1 through which the
 * workers (test/kube/harness.ts) restart or stop kube-apiserver and compact etcd.
 *
 * Control server: every route is POST, answers 200 with a JSON body or 500 with { error }, and
 * operations run one at a time, in arrival order.
 *   /apiserver/stop                  -> {}                        stop kube-apiserver (etcd stays up)
 *   /apiserver/start                 -> {}                        start it on the same port; no-op if running
 *   /apiserver/restart               -> {}                        stop + start, resolves when /readyz is ok
 *   /etcd/compact                    -> { revision }              compact etcd at its current revision
 *   /expire-resource-versions        -> { compactedRevision }     make every earlier resourceVersion 410 Gone
 *   /status                          -> { apiServerRunning, etcdRevision }
 */
import { createServer, type Server } from "node:http"
import type { TestProject } from "vitest/node"
import { ControlPlane } from "./ControlPlane.js"
import type { KubeContext } from "./context.js"

type Operation = (plane: ControlPlane) => Promise<Record<string, unknown>>

const ROUTES: Readonly<Record<string, Operation>> = {
  "/apiserver/stop": async (plane) => {
    await plane.stopApiServer()
    return {}
  },
  "/apiserver/start": async (plane) => {
    await plane.startApiServer()
    return {}
  },
  "/apiserver/restart": async (plane) => {
    await plane.restartApiServer()
    return {}
  },
  "/etcd/compact": async (plane) => ({ revision: await plane.compactEtcd() }),
  "/expire-resource-versions": async (plane) => ({ compactedRevision: await plane.expireResourceVersions() }),
  "/status": async (plane) => ({
    apiServerRunning: plane.apiServerRunning,
    etcdRevision: await plane.etcdRevision(),
  }),
}

const startControlServer = async (plane: ControlPlane): Promise<{ server: Server; url: string }> => {
  // One operation at a time: two files restarting the apiserver at once would race on its port.
  let queue: Promise<unknown> = Promise.resolve()
  const server = createServer((req, res) => {
    const operation = req.method === "POST" && req.url !== undefined ? ROUTES[req.url] : undefined
    req.resume()
    if (operation === undefined) {
      res.writeHead(404, { "content-type": "application/json" })
      res.end(
        JSON.stringify({
          error: `no route ${req.method} ${req.url}; POST one of ${Object.keys(ROUTES).join(", ")}`,
        }),
      )
      return
    }
    const result = queue.then(() => operation(plane))
    queue = result.catch(() => undefined)
    result.then(
      (body) => {
        res.writeHead(200, { "content-type": "application/json" })
        res.end(JSON.stringify(body))
      },
      (error: unknown) => {
        res.writeHead(500, { "content-type": "application/json" })
        res.end(JSON.stringify({ error: error instanceof Error ? error.message : String(error) }))
      },
    )
  })
  // Operations (a restart) take seconds; do not let Node's request timeouts cut them short.
  server.requestTimeout = 0
  await new Promise<void>((resolvePromise, reject) => {
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => resolvePromise())
  })
  const address = server.address()
  if (address === null || typeof address === "string") throw new Error("control server has no TCP address")
  return { server, url: `http://127.0.0.1:${address.port}` }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const plane = await ControlPlane.start()
  let control: { server: Server; url: string }
  try {
    control = await startControlServer(plane)
  } catch (error) {
    await plane.stop()
    throw error
  }
  const { info, timings } = plane
  const context: KubeContext = {
    server: info.server,
    caFile: info.caFile,
    adminKubeconfig: info.adminKubeconfig,
    adminCertFile: info.adminCertFile,
    adminKeyFile: info.adminKeyFile,
    userKubeconfig: info.userKubeconfig,
    userCertFile: info.userCertFile,
    userKeyFile: info.userKeyFile,
    userName: info.userName,
    kubernetesVersion: info.kubernetesVersion,
    etcdUrl: info.etcdUrl,
    controlUrl: control.url,
  }
  project.provide("kube", context)
  process.stderr.write(
    `control plane ${info.kubernetesVersion} at ${info.server}: etcd ready ${timings.etcdReadyMs} ms, ` +
      `kube-apiserver ready ${timings.apiServerReadyMs} ms, kube-controller-manager working ` +
      `${timings.controllerManagerReadyMs} ms (binaries from ${info.binariesDir})\n`,
  )

  return async () => {
    control.server.closeAllConnections()
    await new Promise((resolvePromise) => control.server.close(resolvePromise))
    // stop() throws if any of the control plane's processes is still alive afterwards, which
    // vitest reports as an error of the run: leaked processes do not go unnoticed.
    await plane.stop()
  }
}
