/**
 * A plain-HTTP reverse proxy in front of the real kube-apiserver (authenticating upstream as the
 * admin, like test/support/RecordingProxy.ts) that cuts answers in the middle: it forwards the
 * status and headers, then the first half of a body chunk, then either resets the connection or
 * ends the response cleanly with half a JSON line. Which answers are cut is up to `decide`.
 */
import type { KubeContext } from "../../kube/context.js"
import { type ProxyServer, serveAdminProxy } from "../AdminProxy.js"

/** `reset`: connection destroyed mid-body; `end`: chunked body ended cleanly after half a line. */
export type Cut = "reset" | "end" | undefined

export interface CutRecord {
  readonly path: string
  readonly how: Exclude<Cut, undefined>
  readonly bytesSent: number
}

export interface CuttingProxy extends ProxyServer {
  readonly cuts: ReadonlyArray<CutRecord>
  /** Decides per request (`watch` true for watch=1 requests) whether and how to cut its answer. */
  decide: (request: { readonly path: string; readonly watch: boolean }) => Cut
}

export const startCuttingProxy = async (kube: KubeContext): Promise<CuttingProxy> => {
  const cuts: Array<CutRecord> = []
  const server = await serveAdminProxy(kube, "cutting-proxy", (req, res, forward) => {
    const path = req.url ?? ""
    const cut = proxy.decide({ path, watch: /[?&]watch=(1|true)/.test(path) })
    const upstream = forward((answer) => {
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
          upstream.destroy()
        })
      })
      answer.on("end", () => {
        if (!done) res.end()
      })
      answer.on("error", () => res.destroy())
    })
  })
  const proxy: CuttingProxy = Object.assign(server, { cuts, decide: (): Cut => undefined })
  return proxy
}
