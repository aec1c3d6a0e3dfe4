/**
 * A plain-HTTP reverse proxy on loopback in front of the real kube-apiserver, authenticating
 * upstream as the admin. It records every request's method, path and Accept header and every byte
 * of every answer, so tests can prove what the controller asks for and what it ever receives.
 */
import type { KubeContext } from "../kube/context.js"
import { type ProxyServer, serveAdminProxy } from "./AdminProxy.js"

export interface RecordedRequest {
  readonly method: string
  readonly path: string
  readonly accept: string | undefined
}

export interface RecordingProxy extends ProxyServer {
  readonly requests: ReadonlyArray<RecordedRequest>
  /** Every response body, concatenated per request. */
  readonly responses: ReadonlyArray<string>
}

export const startRecordingProxy = async (kube: KubeContext): Promise<RecordingProxy> => {
  const requests: Array<RecordedRequest> = []
  const responses: Array<string> = []
  const server = await serveAdminProxy(kube, "proxy", (req, res, forward) => {
    requests.push({ method: req.method ?? "", path: req.url ?? "", accept: req.headers.accept })
    const index = responses.push("") - 1
    forward((answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers)
      answer.on("data", (chunk: Buffer) => {
        responses[index] += chunk.toString("utf8")
        res.write(chunk)
      })
      answer.on("end", () => res.end())
      answer.on("error", () => res.destroy())
    })
  })
  return { ...server, requests, responses }
}
