/**
 * A plain-HTTP reverse proxy on loopback in front of the real kube-apiserver, authenticating
 * upstream as the admin. It records every request's method, path and Accept header and every byte
 * of every answer, so tests can prove what the controller asks for and what it ever receives.
 */
import { once } from "node:events"
import { readFileSync, writeFileSync } from "node:fs"
import * as http from "node:http"
import * as https from "node:https"
import type { AddressInfo } from "node:net"
import { join } from "node:path"
import type { KubeContext } from "../kube/context.js"

export interface RecordedRequest {
  readonly method: string
  readonly path: string
  readonly accept: string | undefined
}

export interface RecordingProxy {
  readonly url: string
  readonly requests: ReadonlyArray<RecordedRequest>
  /** Every response body, concatenated per request. */
  readonly responses: ReadonlyArray<string>
  /** A kubeconfig that points at the proxy without credentials. */
  writeKubeconfig(dir: string): string
  close(): Promise<void>
}

export const startRecordingProxy = async (kube: KubeContext): Promise<RecordingProxy> => {
  const upstream = new URL(kube.server)
  const tls = {
    ca: readFileSync(kube.caFile),
    cert: readFileSync(kube.adminCertFile),
    key: readFileSync(kube.adminKeyFile),
  }
  const requests: Array<RecordedRequest> = []
  const responses: Array<string> = []
  const server = http.createServer((req, res) => {
    requests.push({ method: req.method ?? "", path: req.url ?? "", accept: req.headers.accept })
    const index = responses.push("") - 1
    const headers = { ...req.headers, host: upstream.host }
    const forward = https.request(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers,
        ...tls,
        agent: false,
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers)
        answer.on("data", (chunk: Buffer) => {
          responses[index] += chunk.toString("utf8")
          res.write(chunk)
        })
        answer.on("end", () => res.end())
        answer.on("error", () => res.destroy())
      },
    )
    forward.on("error", () => res.destroy())
    // The client went away (an interrupted watch): stop the upstream request too.
    res.on("close", () => forward.destroy())
    req.pipe(forward)
  })
  server.listen(0, "127.0.0.1")
  await once(server, "listening")
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return {
    url,
    requests,
    responses,
    writeKubeconfig(dir) {
      const file = join(dir, "proxy.kubeconfig")
      writeFileSync(
        file,
        [
          "apiVersion: v1",
          "kind: Config",
          // client-node refuses plain HTTP unless TLS verification is explicitly off.
          "clusters: [{name: proxy, cluster: {server: '" + url + "', insecure-skip-tls-verify: true}}]",
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
