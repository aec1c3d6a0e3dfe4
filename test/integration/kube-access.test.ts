/**
 * The Kubernetes access layer against a real kube-apiserver: authentication with client
 * certificates and ServiceAccount tokens, Status decoding of real failures, metadata-only lists
 * paged the way the watcher pages them, and a watch (`openLines`) whose end or interruption really
 * ends the request on the server.
 */
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import { afterAll, beforeAll } from "vitest"
import {
  isForbidden,
  isGone,
  isNotFound,
  isRetriable,
  isUnauthorized,
  KubeApiError,
  KubeClient,
  type KubeClientShape,
  type KubeError,
  type KubeQuery,
  ListPage,
  MediaType,
  watchQuery,
} from "../../src/kube/index.js"
import type { LineReader } from "../../src/kube/LineReader.js"
import {
  adminRequest,
  createNamespace,
  deleteNamespace,
  expectStatus,
  expireResourceVersions,
  type KubeContext,
  kubeContext,
} from "../kube/harness.js"

let info: KubeContext
let namespace: string
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "kube-access-"))

const adminLayer = Layer.unwrapEffect(Effect.sync(() => KubeClient.layerFromFile(info.adminKubeconfig)))
const userLayer = Layer.unwrapEffect(Effect.sync(() => KubeClient.layerFromFile(info.userKubeconfig)))

const asAdmin = <A, E>(f: (client: KubeClientShape) => Effect.Effect<A, E>) =>
  Effect.flatMap(KubeClient, f).pipe(Effect.provide(adminLayer))

beforeAll(async () => {
  info = kubeContext()
  namespace = await createNamespace("kube-access")
})

afterAll(async () => {
  fs.rmSync(scratch, { recursive: true, force: true })
  if (namespace !== undefined) await deleteNamespace(namespace)
})

const Named = Schema.Struct({ metadata: Schema.Struct({ name: Schema.String }) })
const NamedList = Schema.Struct({ items: Schema.Array(Named) })
const configMapsPath = () => `/api/v1/namespaces/${namespace}/configmaps`

const ConfigMap = Schema.Struct({
  kind: Schema.Literal("ConfigMap"),
  metadata: Schema.Struct({ name: Schema.String, namespace: Schema.String, uid: Schema.String }),
  data: Schema.Record({ key: Schema.String, value: Schema.String }),
})
/** Who the server says we are: a SelfSubjectReview, created (not stored) for the asking client. */
const whoAmI = (client: KubeClientShape) =>
  client
    .post(
      "/apis/authentication.k8s.io/v1/selfsubjectreviews",
      { apiVersion: "authentication.k8s.io/v1", kind: "SelfSubjectReview" },
      {
        schema: Schema.Struct({
          status: Schema.Struct({
            userInfo: Schema.Struct({ username: Schema.String, groups: Schema.Array(Schema.String) }),
          }),
        }),
      },
    )
    .pipe(Effect.map((review) => review.status.userInfo))

/** Every page of a LIST, following `continue` as the watcher does. */
const listPages = (
  client: KubeClientShape,
  path: string,
  query: KubeQuery = {},
  accept: string = MediaType.json,
): Effect.Effect<ReadonlyArray<ListPage>, KubeError> => {
  const from = (
    token: string | undefined,
    pages: ReadonlyArray<ListPage>,
  ): Effect.Effect<ReadonlyArray<ListPage>, KubeError> =>
    client
      .get(path, { accept, query: { ...query, continue: token }, schema: ListPage })
      .pipe(
        Effect.flatMap((page) =>
          page.metadata.continue
            ? from(page.metadata.continue, [...pages, page])
            : Effect.succeed([...pages, page]),
        ),
      )
  return from(undefined, [])
}

const WatchLine = Schema.parseJson(Schema.Struct({ type: Schema.String, object: Schema.Unknown }))
type WatchLine = typeof WatchLine.Type

/** Reads a watch's events until `last` says one is the last wanted, or the server ends the watch. */
const readEvents = (reader: LineReader, last: (event: WatchLine) => boolean = () => false) =>
  Effect.gen(function* () {
    const events: Array<WatchLine> = []
    for (let lines = yield* reader.next; lines !== undefined; lines = yield* reader.next) {
      for (const line of lines) {
        const event = yield* Schema.decodeUnknown(WatchLine)(line)
        events.push(event)
        if (last(event)) return events
      }
    }
    return events
  })

const PartialObjectMetadata = Schema.Struct({
  kind: Schema.Literal("PartialObjectMetadata"),
  apiVersion: Schema.Literal("meta.k8s.io/v1"),
  metadata: Schema.Struct({ name: Schema.String, resourceVersion: Schema.String }),
})

describe("admin identity (client certificate in system:masters)", () => {
  it.live("lists namespaces and is known to the server as admin", () =>
    Effect.gen(function* () {
      const client = yield* KubeClient
      expect(client.server).toBe(info.server)
      expect(client.identity.authMethod).toBe("client-certificate")
      expect(client.identity.certificateSubject).toContain("CN=admin")
      const namespaces = yield* client.get("/api/v1/namespaces", { schema: NamedList })
      const names = namespaces.items.map((n) => n.metadata.name)
      expect(names).toContain("default")
      expect(names).toContain("kube-system")
      expect(names).toContain(namespace)
      const me = yield* whoAmI(client)
      expect(me.username).toBe("admin")
      expect(me.groups).toContain("system:masters")
    }).pipe(Effect.provide(adminLayer)),
  )

  it.live("creates a ConfigMap, reads it back and replaces it", () =>
    Effect.gen(function* () {
      const client = yield* KubeClient
      const created = yield* client.post(
        configMapsPath(),
        { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "roundtrip" }, data: { greeting: "hello" } },
        { schema: ConfigMap },
      )
      const read = yield* client.get(`${configMapsPath()}/roundtrip`, { schema: ConfigMap })
      expect(read.metadata.uid).toBe(created.metadata.uid)
      expect(read.metadata.namespace).toBe(namespace)
      expect(read.data).toEqual({ greeting: "hello" })

      const replaced = yield* client.put(
        `${configMapsPath()}/roundtrip`,
        { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "roundtrip" }, data: { greeting: "hi" } },
        { schema: ConfigMap },
      )
      expect(replaced.metadata.uid).toBe(created.metadata.uid)
      expect(replaced.data).toEqual({ greeting: "hi" })
      expectStatus(yield* Effect.promise(() => adminRequest("DELETE", `${configMapsPath()}/roundtrip`)), 200)
      const gone = yield* Effect.flip(client.get(`${configMapsPath()}/roundtrip`, { schema: Schema.Unknown }))
      expect(isNotFound(gone)).toBe(true)
    }).pipe(Effect.provide(adminLayer)),
  )

  it.live("pages through a metadata-only list", () =>
    Effect.gen(function* () {
      const client = yield* KubeClient
      for (const name of ["page-a", "page-b", "page-c"]) {
        yield* client.post(
          configMapsPath(),
          { metadata: { name, labels: { suite: "paging" } }, data: { secretish: "must-not-come-back" } },
          { schema: Schema.Unknown },
        )
      }
      const pages = yield* listPages(
        client,
        configMapsPath(),
        { limit: 2, labelSelector: "suite=paging" },
        MediaType.partialObjectMetadataList,
      )
      expect(pages.length).toBe(2)
      expect(pages[0]?.metadata.continue).toBeTruthy()
      expect(pages[0]?.metadata.resourceVersion).toMatch(/^\d+$/)
      const items = yield* Schema.decodeUnknown(Schema.Array(PartialObjectMetadata))(
        pages.flatMap((p) => p.items),
      )
      expect(items.map((i) => i.metadata.name).sort()).toEqual(["page-a", "page-b", "page-c"])
      // Metadata only: the server stripped the data.
      expect(JSON.stringify(pages)).not.toContain("must-not-come-back")
    }).pipe(Effect.provide(adminLayer)),
  )

  it.live("decodes a missing resource as 404 NotFound", () =>
    Effect.gen(function* () {
      const client = yield* KubeClient
      const error = yield* Effect.flip(
        client.get(`${configMapsPath()}/does-not-exist`, { schema: Schema.Unknown }),
      )
      expect(error._tag).toBe("KubeApiError")
      if (error._tag !== "KubeApiError") return
      expect(error.code).toBe(404)
      expect(error.reason).toBe("NotFound")
      expect(error.message).toBe('configmaps "does-not-exist" not found')
      expect(Option.getOrThrow(error.status).details?.name).toBe("does-not-exist")
      expect(isNotFound(error)).toBe(true)
    }).pipe(Effect.provide(adminLayer)),
  )
})

describe("unprivileged identity (client certificate, no RBAC grants)", () => {
  it.live("gets a decoded 403 Forbidden", () =>
    Effect.gen(function* () {
      const client = yield* KubeClient
      const error = yield* Effect.flip(client.get("/api/v1/namespaces", { schema: Schema.Unknown }))
      expect(error._tag).toBe("KubeApiError")
      if (error._tag !== "KubeApiError") return
      expect(error.code).toBe(403)
      expect(error.reason).toBe("Forbidden")
      expect(error.message).toContain(`User "${info.userName}" cannot list resource "namespaces"`)
      expect(isForbidden(error)).toBe(true)
    }).pipe(Effect.provide(userLayer)),
  )

  it.live("fails a watch it may not open with 403 before any event", () =>
    Effect.gen(function* () {
      const client = yield* KubeClient
      const error = yield* Effect.flip(
        Effect.scoped(client.openLines(configMapsPath(), { query: watchQuery({}) })),
      )
      expect(isForbidden(error)).toBe(true)
    }).pipe(Effect.provide(userLayer)),
  )
})

describe("ServiceAccount token kubeconfig", () => {
  it.live("authenticates with a token from the TokenRequest API", () =>
    Effect.gen(function* () {
      const token = yield* asAdmin((client) =>
        Effect.gen(function* () {
          yield* client.post(
            `/api/v1/namespaces/${namespace}/serviceaccounts`,
            { metadata: { name: "robot" } },
            { schema: Schema.Unknown },
          )
          const review = yield* client.post(
            `/api/v1/namespaces/${namespace}/serviceaccounts/robot/token`,
            {
              apiVersion: "authentication.k8s.io/v1",
              kind: "TokenRequest",
              spec: { expirationSeconds: 3600 },
            },
            { schema: Schema.Struct({ status: Schema.Struct({ token: Schema.String }) }) },
          )
          return review.status.token
        }),
      )
      const file = path.join(scratch, "token-kubeconfig")
      fs.writeFileSync(
        file,
        [
          "apiVersion: v1",
          "kind: Config",
          "clusters:",
          `  - name: test\n    cluster:\n      server: ${info.server}\n      certificate-authority: ${info.caFile}`,
          "users:",
          `  - name: robot\n    user:\n      token: ${token}`,
          "contexts:",
          "  - name: robot\n    context:\n      cluster: test\n      user: robot",
          "current-context: robot",
          "",
        ].join("\n"),
      )
      const result = yield* Effect.gen(function* () {
        const client = yield* KubeClient
        expect(client.identity.authMethod).toBe("token")
        const me = yield* whoAmI(client)
        const forbidden = yield* Effect.flip(client.get("/api/v1/namespaces", { schema: Schema.Unknown }))
        return { me, forbidden }
      }).pipe(Effect.provide(KubeClient.layerFromFile(file)))
      expect(result.me.username).toBe(`system:serviceaccount:${namespace}:robot`)
      expect(result.me.groups).toContain("system:serviceaccounts")
      expect(isForbidden(result.forbidden)).toBe(true)
    }),
  )
})

describe("invalid credentials", () => {
  it.live("a token the server does not know is a decoded 401 Unauthorized", () =>
    Effect.gen(function* () {
      const file = path.join(scratch, "bogus-token")
      fs.writeFileSync(
        file,
        fs
          .readFileSync(info.adminKubeconfig, "utf8")
          .replace(/client-certificate-data: .*\n\s*client-key-data: .*/, "token: not-a-real-token"),
      )
      const error = yield* Effect.flip(
        Effect.flatMap(KubeClient, (c) => c.get("/api/v1/namespaces", { schema: Schema.Unknown })).pipe(
          Effect.provide(KubeClient.layerFromFile(file)),
        ),
      )
      expect(error._tag).toBe("KubeApiError")
      if (error._tag !== "KubeApiError") return
      expect(error.code).toBe(401)
      expect(error.reason).toBe("Unauthorized")
      expect(isUnauthorized(error)).toBe(true)
    }),
  )
})

describe("transport failures", () => {
  it.live("a closed port is ConnectionRefused", () =>
    Effect.gen(function* () {
      const port = yield* Effect.promise(
        () =>
          new Promise<number>((resolve) => {
            const server = net.createServer().listen(0, "127.0.0.1", () => {
              const address = server.address() as net.AddressInfo
              server.close(() => resolve(address.port))
            })
          }),
      )
      const file = path.join(scratch, "closed-port")
      fs.writeFileSync(
        file,
        fs
          .readFileSync(info.adminKubeconfig, "utf8")
          .replace(/server: .*/, `server: https://127.0.0.1:${port}`),
      )
      const error = yield* Effect.flip(
        Effect.flatMap(KubeClient, (c) => c.get("/api/v1/namespaces", { schema: Schema.Unknown })).pipe(
          Effect.provide(KubeClient.layerFromFile(file)),
        ),
      )
      expect(error._tag).toBe("KubeTransportError")
      if (error._tag === "KubeTransportError") expect(error.reason).toBe("ConnectionRefused")
      expect(isRetriable(error)).toBe(true)
    }),
  )

  it.live("a request that does not complete in time is a Timeout (here: a watch read as one response)", () =>
    Effect.gen(function* () {
      const client = yield* KubeClient
      const error = yield* Effect.flip(
        client.get(configMapsPath(), {
          query: { watch: 1, timeoutSeconds: 60 },
          timeout: "300 millis",
          schema: Schema.Unknown,
        }),
      )
      expect(error._tag).toBe("KubeTransportError")
      if (error._tag === "KubeTransportError") expect(error.reason).toBe("Timeout")
    }).pipe(Effect.provide(adminLayer)),
  )

  it.live("a server certificate from another CA is a Tls transport error", () =>
    Effect.gen(function* () {
      const yaml = fs
        .readFileSync(info.adminKubeconfig, "utf8")
        .replace(/certificate-authority-data: .*/, "insecure-skip-tls-verify: false")
      const file = path.join(scratch, "wrong-ca")
      fs.writeFileSync(file, yaml)
      const error = yield* Effect.flip(
        Effect.flatMap(KubeClient, (c) => c.get("/api/v1/namespaces", { schema: Schema.Unknown })).pipe(
          Effect.provide(KubeClient.layerFromFile(file)),
        ),
      )
      expect(error._tag).toBe("KubeTransportError")
      if (error._tag === "KubeTransportError") expect(error.reason).toBe("Tls")
    }),
  )
})

/** The API server's own count of open namespaced ConfigMap watches, read from its /metrics. */
const openConfigMapWatches = (client: KubeClientShape) =>
  Effect.scoped(
    Effect.flatMap(client.openLines("/metrics", { accept: "text/plain" }), (reader) => readLines(reader)),
  ).pipe(
    Effect.map((lines) =>
      lines
        .filter(
          (line) =>
            line.startsWith("apiserver_longrunning_requests{") &&
            line.includes('resource="configmaps"') &&
            line.includes('scope="namespace"') &&
            line.includes('verb="WATCH"'),
        )
        .reduce((sum, line) => sum + Number(line.split(" ").at(-1)), 0),
    ),
  )

/** Every line of a finite streaming answer. */
const readLines = (reader: LineReader) =>
  Effect.gen(function* () {
    const all: Array<string> = []
    for (let lines = yield* reader.next; lines !== undefined; lines = yield* reader.next) all.push(...lines)
    return all
  })

/** Waits until the server counts `expected` open namespaced ConfigMap watches; fails after 20 s. */
const watchCountBecomes = (client: KubeClientShape, expected: number) =>
  openConfigMapWatches(client).pipe(
    Effect.filterOrFail(
      (n) => n === expected,
      (n) => new Error(`the API server counts ${n} open ConfigMap watches, expected ${expected}`),
    ),
    Effect.retry(Schedule.spaced("100 millis").pipe(Schedule.upTo("20 seconds"))),
  )

describe("watch (openLines)", () => {
  it.live(
    "reads ADDED for a ConfigMap created after it opened; ending or interrupting it ends the request",
    () =>
      Effect.gen(function* () {
        const client = yield* KubeClient
        const [list] = yield* listPages(client, configMapsPath(), {}, MediaType.partialObjectMetadataList)
        const resourceVersion = list?.metadata.resourceVersion
        const before = yield* openConfigMapWatches(client)

        const events = yield* Effect.scoped(
          Effect.flatMap(
            client.openLines(configMapsPath(), {
              accept: MediaType.partialObjectMetadata,
              query: watchQuery({ resourceVersion, timeoutSeconds: 120 }),
            }),
            (reader) => readEvents(reader, (event) => event.type === "ADDED"),
          ),
        ).pipe(Effect.fork)
        // The watch is open once the server counts it.
        yield* watchCountBecomes(client, before + 1)
        yield* client.post(configMapsPath(), { metadata: { name: "watched" } }, { schema: Schema.Unknown })
        const added = (yield* Fiber.join(events)).filter((event) => event.type === "ADDED")
        expect(added.length).toBe(1)
        const object = yield* Schema.decodeUnknown(PartialObjectMetadata)(added[0]?.object)
        expect(object.metadata.name).toBe("watched")

        // The closed scope has ended its request; a second watch, interrupted while idle, must end
        // its request too. Retried reads absorb other clients' watch reconnects.
        yield* watchCountBecomes(client, before)
        const idle = yield* Effect.scoped(
          Effect.flatMap(
            client.openLines(configMapsPath(), {
              query: watchQuery({ resourceVersion: object.metadata.resourceVersion, timeoutSeconds: 300 }),
            }),
            (reader) => readEvents(reader),
          ),
        ).pipe(Effect.fork)
        yield* watchCountBecomes(client, before + 1)
        yield* Fiber.interrupt(idle)
        yield* watchCountBecomes(client, before)
      }).pipe(Effect.provide(adminLayer)),
  )
  it.live(
    "a watch from an expired resourceVersion ends with an ERROR event that decodes as 410 Gone",
    () =>
      Effect.gen(function* () {
        const client = yield* KubeClient
        const page = yield* client.get(configMapsPath(), { query: { limit: 1 }, schema: ListPage })
        const resourceVersion = page.metadata.resourceVersion
        expect(resourceVersion).toMatch(/^\d+$/)
        yield* Effect.promise(() => expireResourceVersions())
        // The same client keeps working across the API server restart this involved.
        const events = yield* Effect.scoped(
          Effect.flatMap(
            client.openLines(configMapsPath(), {
              query: watchQuery({ resourceVersion, timeoutSeconds: 30 }),
            }),
            (reader) => readEvents(reader),
          ),
        )
        expect(events.map((e) => e.type)).toEqual(["ERROR"])
        const error = KubeApiError.fromWatchEvent("GET", configMapsPath(), events[0]?.object)
        expect(error.code).toBe(410)
        expect(error.reason).toBe("Expired")
        expect(error.message).toContain("too old resource version")
        expect(isGone(error)).toBe(true)
      }).pipe(Effect.provide(adminLayer)),
    120_000,
  )
})
