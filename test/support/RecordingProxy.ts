/**
 * A plain-HTTP reverse proxy on loopback in front of the real kube-apiserver, authenticating
 * upstream as the admin. It records every request's method, path, Accept header and arrival time
 * and every byte of every answer, so tests can prove what the controller asks for and what it ever
 * receives. A test can also make it misbehave per request (`fault`): answer a status of its own
 * instead of forwarding, or cut a watch off after its first events.
 */
import type { KubeContext } from "../kube/context.js"
import { type ProxyServer, serveAdminProxy } from "./AdminProxy.js"

export interface RecordedRequest {
  readonly method: string
  readonly path: string
  readonly accept: string | undefined
  /** When it arrived (Date.now()). */
  readonly at: number
}

export type ProxyFault =
  /** Answer this status and body (a Kubernetes Status) without asking the API server. */
  | { readonly _tag: "Answer"; readonly status: number; readonly body: unknown }
  /** Forward, then cut the connection (no clean end) once `lines` complete lines went through. */
  | { readonly _tag: "CutAfterLines"; readonly lines: number }

export interface RecordingProxy extends ProxyServer {
  readonly requests: ReadonlyArray<RecordedRequest>
  /** Every response body, concatenated per request. */
  readonly responses: ReadonlyArray<string>
  /** Decides per request how to misbehave; `undefined` (the default) forwards faithfully. */
  fault: (request: RecordedRequest) => ProxyFault | undefined
}

export const startRecordingProxy = async (kube: KubeContext): Promise<RecordingProxy> => {
  const requests: Array<RecordedRequest> = []
  const responses: Array<string> = []
  const server = await serveAdminProxy(kube, "proxy", (req, res, forward) => {
    const request = {
      method: req.method ?? "",
      path: req.url ?? "",
      accept: req.headers.accept,
      at: Date.now(),
    }
    requests.push(request)
    const index = responses.push("") - 1
    const fault = proxy.fault(request)
    if (fault?._tag === "Answer") {
      const body = JSON.stringify(fault.body)
      responses[index] = body
      req.resume()
      res.writeHead(fault.status, { "content-type": "application/json" }).end(body)
      return
    }
    let linesLeft = fault?._tag === "CutAfterLines" ? fault.lines : Number.POSITIVE_INFINITY
    forward((answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers)
      answer.on("data", (chunk: Buffer) => {
        if (linesLeft <= 0) return
        let end = chunk.length
        for (let i = 0; i < chunk.length && linesLeft > 0; i++) {
          if (chunk[i] === 0x0a && --linesLeft === 0) end = i + 1
        }
        const part = chunk.subarray(0, end)
        responses[index] += part.toString("utf8")
        if (linesLeft > 0) {
          res.write(part)
          return
        }
        // The last line reaches the client, then the connection breaks off mid-body.
        res.write(part, () => res.socket?.destroy())
        answer.destroy()
      })
      answer.on("end", () => res.end())
      answer.on("error", () => res.destroy())
    })
  })
  const proxy: RecordingProxy = { ...server, requests, responses, fault: () => undefined }
  return proxy
}
