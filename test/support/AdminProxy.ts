/**
 * The common part of the test proxies in front of the real kube-apiserver: a plain-HTTP server on
 * loopback whose requests are forwarded upstream as the admin, and a kubeconfig without credentials
 * that points a controller at it. What a proxy does with the answers is its own business.
 */
import { once } from "node:events"
import { readFileSync, writeFileSync } from "node:fs"
import * as http from "node:http"
import * as https from "node:https"
import type { AddressInfo } from "node:net"
import { join } from "node:path"
import type { KubeContext } from "../kube/context.js"

/**
 * Handles one request: `forward` sends it upstream (same method, path, headers and body) and calls
 * `onAnswer` with kube-apiserver's answer. A client that goes away ends the upstream request too.
 */
export type ProxyHandler = (
  req: http.IncomingMessage,
  res: http.ServerResponse,
  forward: (onAnswer: (answer: http.IncomingMessage) => void) => http.ClientRequest,
) => void

export interface ProxyServer {
  readonly url: string
  /** A kubeconfig that points at the proxy without credentials. */
  writeKubeconfig(dir: string): string
  close(): Promise<void>
}

export const serveAdminProxy = async (
  kube: KubeContext,
  name: string,
  handle: ProxyHandler,
): Promise<ProxyServer> => {
  const upstream = new URL(kube.server)
  const tls = {
    ca: readFileSync(kube.caFile),
    cert: readFileSync(kube.adminCertFile),
    key: readFileSync(kube.adminKeyFile),
  }
  const server = http.createServer((req, res) =>
    handle(req, res, (onAnswer) => {
      const forward = https.request(
        {
          host: upstream.hostname,
          port: upstream.port,
          method: req.method,
          path: req.url,
          headers: { ...req.headers, host: upstream.host },
          ...tls,
          agent: false,
        },
        onAnswer,
      )
      forward.on("error", () => res.destroy())
      // The client went away (an interrupted watch): stop the upstream request too.
      res.on("close", () => forward.destroy())
      req.pipe(forward)
      return forward
    }),
  )
  server.listen(0, "127.0.0.1")
  await once(server, "listening")
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return {
    url,
    writeKubeconfig(dir) {
      const file = join(dir, `${name}.kubeconfig`)
      writeFileSync(
        file,
        [
          "apiVersion: v1",
          "kind: Config",
          // client-node refuses plain HTTP unless TLS verification is explicitly off.
          `clusters: [{name: proxy, cluster: {server: '${url}', insecure-skip-tls-verify: true}}]`,
          "users: [{name: anonymous, user: {}}]",
          "contexts: [{name: proxy, context: {cluster: proxy, user: anonymous}}]",
          "current-context: proxy",
          "",
        ].join("\n"),
      )
      return file
    },
    async close() {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}
