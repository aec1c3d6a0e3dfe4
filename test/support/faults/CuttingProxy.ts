/**
 * A plain-HTTP reverse proxy in front of the real kube-apiserver (authenticating upstream as the
 * admin, like test/support/RecordingProxy.ts) that cuts answers in the middle: it forwards the
 * status and headers, then the first half of a body chunk, then either resets the connection or
 * ends the response cleanly with half a JSON line. Which answers are cut is up to `decide`.
 */
import { once } from "node:events"
import { readFileSync, writeFileSync } from "node:fs"
import * as http from "node:http"
import * as https from "node:https"
import type { AddressInfo } from "node:net"
import { join } from "node:path"
import type { KubeContext } from "../../kube/context.js"

/** `reset`: connection destroyed mid-body; `end`: chunked body ended cleanly after half a line. */
export type Cut = "reset" | "end" | undefined

export interface CutRecord {
  readonly path: string
  readonly how: Exclude<Cut, undefined>
  readonly bytesSent: number
}

export interface CuttingProxy {
  readonly url: string
  readonly cuts: ReadonlyArray<CutRecord>
  /** Decides per request (`watch` true for watch=1 requests) whether and how to cut its answer. */
  decide: (request: { readonly path: string; readonly watch: boolean }) => Cut
  writeKubeconfig(dir: string): string
  close(): Promise<void>
}

export const startCuttingProxy = async (kube: KubeContext): Promise<CuttingProxy> => {
  const upstream = new URL(kube.server)
  const tls = {
    ca: readFileSync(kube.caFile),
    cert: readFileSync(kube.adminCertFile),
    key: readFileSync(kube.adminKeyFile),
  }
  const cuts: Array<CutRecord> = []
  const server = http.createServer((req, res) => {
    const path = req.url ?? ""
    const cut = proxy.decide({ path, watch: /[?&]watch=(1|true)/.test(path) })
    const forward = https.request(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path,
        headers: { ...req.headers, host: upstream.host },
        ...tls,
        agent: false,
      },
      (answer) => {
        const headers = { ...answer.headers }
        // The body is re-chunked here: a fixed length would let the client notice the cut early.
        delete headers["content-length"]
        res.writeHead(answer.statusCode ?? 502, headers)
        let sent = 0
        let done = false
        answer.on("data", (chunk: Buffer) => {
          if (done) return
          if (cut === undefined || answer.statusCode !== 200) {
            sent += chunk.length
            res.write(chunk)
            return
          }
          // Cut in the middle of the first chunk of a body: half a JSON document or event line.
          const half = chunk.subarray(0, Math.max(1, Math.floor(chunk.length / 2)))
          done = true
          res.write(half, () => {
            cuts.push({ path, how: cut, bytesSent: sent + half.length })
            if (cut === "reset") res.destroy()
            else res.end()
            forward.destroy()
          })
        })
        answer.on("end", () => {
          if (!done) res.end()
        })
        answer.on("error", () => res.destroy())
      },
    )
    forward.on("error", () => res.destroy())
    res.on("close", () => forward.destroy())
    req.pipe(forward)
  })
  server.listen(0, "127.0.0.1")
  await once(server, "listening")
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const proxy: CuttingProxy = {
    url,
    cuts,
    decide: () => undefined,
    writeKubeconfig(dir) {
      const file = join(dir, "cutting-proxy.kubeconfig")
      writeFileSync(
        file,
        [
          "apiVersion: v1",
          "kind: Config",
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
  return proxy
}
