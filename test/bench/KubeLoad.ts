/**
 * Load generation against kube-apiserver for the benchmark: keep-alive HTTPS with the admin client
 * certificate and a fixed number of requests in flight. Plain Node on purpose: the generator must
 * cost as little as possible next to the controller it measures, and it must not share code with it.
 */
import { readFileSync } from "node:fs"
import { Agent, request } from "node:https"

export interface KubeTarget {
  readonly server: string
  readonly caFile: string
  readonly certFile: string
  readonly keyFile: string
}

export interface KubeResponse {
  readonly status: number
  /** performance.now() when the response head arrived: the API server's acknowledgement. */
  readonly ackAt: number
  readonly body: string
}

export interface KubeLoad {
  /** One request; `keepBody` false discards the body (PATCH answers carry the whole object). */
  readonly send: (
    method: string,
    path: string,
    body?: unknown,
    contentType?: string,
    keepBody?: boolean,
  ) => Promise<KubeResponse>
  readonly close: () => void
}

export const makeKubeLoad = (target: KubeTarget, maxSockets: number): KubeLoad => {
  const url = new URL(target.server)
  const agent = new Agent({
    keepAlive: true,
    maxSockets,
    ca: readFileSync(target.caFile),
    cert: readFileSync(target.certFile),
    key: readFileSync(target.keyFile),
  })
  const once = (
    method: string,
    path: string,
    payload: string | undefined,
    contentType: string,
    keep: boolean,
  ) =>
    new Promise<KubeResponse>((resolve, reject) => {
      const req = request(
        {
          host: url.hostname,
          port: url.port,
          method,
          path,
          agent,
          headers:
            payload === undefined
              ? { accept: "application/json" }
              : {
                  accept: "application/json",
                  "content-type": contentType,
                  "content-length": Buffer.byteLength(payload),
                },
          timeout: 60_000,
        },
        (res) => {
          const ackAt = performance.now()
          const chunks: Array<Buffer> = []
          res.on("data", (chunk: Buffer) => {
            if (keep || (res.statusCode ?? 0) >= 300) chunks.push(chunk)
          })
          res.on("end", () =>
            resolve({ status: res.statusCode ?? 0, ackAt, body: Buffer.concat(chunks).toString("utf8") }),
          )
          res.on("error", reject)
        },
      )
      req.on("timeout", () => req.destroy(new Error(`${method} ${path}: timed out`)))
      req.on("error", reject)
      req.end(payload)
    })

  return {
    send: async (method, path, body, contentType = "application/json", keepBody = false) => {
      const payload = body === undefined ? undefined : JSON.stringify(body)
      // The API server sheds load with 429 (and, rarely on a loaded box, 5xx or a reset
      // connection): retry those a few times rather than abort a long fill.
      for (let attempt = 1; ; attempt++) {
        try {
          const res = await once(method, path, payload, contentType, keepBody)
          if ((res.status === 429 || res.status >= 500) && attempt < 8) {
            await new Promise((r) => setTimeout(r, 100 * attempt))
            continue
          }
          return res
        } catch (error) {
          if (attempt >= 8) throw error
          await new Promise((r) => setTimeout(r, 100 * attempt))
        }
      }
    },
    close: () => agent.destroy(),
  }
}

/** Runs `task(0..count-1)` with at most `concurrency` in flight; fails on the first failure. */
export const runPool = async (
  count: number,
  concurrency: number,
  task: (index: number) => Promise<void>,
): Promise<void> => {
  let next = 0
  const worker = async () => {
    while (next < count) {
      const index = next++
      await task(index)
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker))
}

/** Throws unless the status is one of `ok`, with the API server's message. */
export const expectOk = (res: KubeResponse, what: string, ok: ReadonlyArray<number> = [200, 201]): void => {
  if (!ok.includes(res.status)) throw new Error(`${what}: HTTP ${res.status} ${res.body.slice(0, 300)}`)
}
