import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import { afterEach, vi } from "vitest"
import { resolveAuth } from "../../../src/kube/KubeAuth.js"
import { fromDefault, fromFiles, fromString, inCluster } from "../../../src/kube/KubeConfigSource.js"
import { describeIdentity } from "../../../src/kube/KubeIdentity.js"

// A throwaway self-signed certificate (CN=alice, O=dev); no cluster trusts it.
const certPem = `-----BEGIN CERTIFICATE-----
MIIBkzCCATmgAwIBAgIUI3qStlDdsDYSHDQFWzhvClanqiUwCgYIKoZIzj0EAwIw
HjEMMAoGA1UECgwDZGV2MQ4wDAYDVQQDDAVhbGljZTAgFw0yNjExMjUyMTQwNTda
GA8yMTI2MTEwMTIxNDA1N1owHjEMMAoGA1UECgwDZGV2MQ4wDAYDVQQDDAVhbGlj
ZTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABHGKXO4UbQMmY187mKDMlFF2pnyT
x1fhjWVnta8uoNv5K+3l4F+jBFlq2I5+TNwG8WvKIzT8KcN8El6nuBbjJPWjUzBR
MB0GA1UdDgQWBBSPlU/LrnhgezDK0Wgg7+zVBLhg+DAfBgNVHSMEGDAWgBSPlU/L
rnhgezDK0Wgg7+zVBLhg+DAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0gA
MEUCIQDLKj21xllplfFIFClnTx53qID9KfJKOEnW5OobHgXeIAIgW0N50d/MYrOr
LJkNuErutq/uSkEs0I357qg3Te2W8t4=
-----END CERTIFICATE-----
`
const keyPem = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQglAr4CHchutNb7SkB
ylArCgAxdLJBmYbZNGeEYaXEthuhRANCAARxilzuFG0DJmNfO5igzJRRdqZ8k8dX
4Y1lZ7WvLqDb+Svt5eBfowRZatiOfkzcBvFryiM0/CnDfBJep7gW4yT1
-----END PRIVATE KEY-----
`
const b64 = (s: string) => Buffer.from(s).toString("base64")

/** A fresh temp folder, removed when the test's scope closes. */
const tempDir = Effect.acquireRelease(
  Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "kube-config-test-"))),
  (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true })),
)

const kubeconfig = (opts: {
  server: string
  user: string
  userBody: string
  context?: string
}) => `apiVersion: v1
kind: Config
clusters:
  - name: c1
    cluster:
      server: ${opts.server}
      certificate-authority-data: ${b64(certPem)}
users:
  - name: ${opts.user}
    user:
${opts.userBody}
contexts:
  - name: ${opts.context ?? "ctx"}
    context:
      cluster: c1
      user: ${opts.user}
      namespace: team-a
current-context: ${opts.context ?? "ctx"}
`

const withEnv = (env: Record<string, string>) =>
  Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))

afterEach(() => {
  vi.useRealTimers()
})

describe("kubeconfig with a bearer token", () => {
  it.scoped("loads the cluster, the context and sends the token as a Bearer header", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const file = path.join(dir, "config")
      fs.writeFileSync(
        file,
        kubeconfig({
          server: "https://127.0.0.1:6443/",
          user: "robot",
          userBody: "      token: s3cr3t-token",
        }),
      )
      const source = yield* fromFiles([file])
      expect(source.server).toBe("https://127.0.0.1:6443")
      expect(source.identity).toMatchObject({
        user: "robot",
        context: "ctx",
        cluster: "c1",
        namespace: "team-a",
        authMethod: "token",
      })
      expect(describeIdentity(source.identity)).not.toContain("s3cr3t")
      const auth = yield* resolveAuth(source.kubeConfig)
      expect(auth.headers.Authorization).toBe("Bearer s3cr3t-token")
      expect(Buffer.from(auth.tls.ca as Buffer).toString()).toBe(certPem)
      expect(auth.tls.cert).toBeUndefined()
    }),
  )
})

describe("kubeconfig with a token file", () => {
  it.scoped("reads client-go's tokenFile relative to the kubeconfig and re-reads it after rotation", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      fs.writeFileSync(path.join(dir, "token"), "first\n")
      const file = path.join(dir, "config")
      fs.writeFileSync(
        file,
        kubeconfig({ server: "https://127.0.0.1:6443", user: "robot", userBody: "      tokenFile: token" }),
      )
      const source = yield* fromFiles([file])
      expect(source.identity.authMethod).toBe("token-file")
      expect((yield* resolveAuth(source.kubeConfig)).headers.Authorization).toBe("Bearer first")
      fs.writeFileSync(path.join(dir, "token"), "second")
      vi.useFakeTimers({ toFake: ["Date"] })
      vi.setSystemTime(Date.now() + 61_000)
      expect((yield* resolveAuth(source.kubeConfig)).headers.Authorization).toBe("Bearer second")
    }),
  )
})

describe("kubeconfig with a client certificate", () => {
  it.scoped("loads inline certificate data and presents it for TLS, without an Authorization header", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const file = path.join(dir, "config")
      fs.writeFileSync(
        file,
        kubeconfig({
          server: "https://127.0.0.1:6443",
          user: "alice",
          userBody: `      client-certificate-data: ${b64(certPem)}\n      client-key-data: ${b64(keyPem)}`,
        }),
      )
      const source = yield* fromFiles([file])
      expect(source.identity.authMethod).toBe("client-certificate")
      expect(source.identity.certificateSubject).toBe("O=dev, CN=alice")
      const auth = yield* resolveAuth(source.kubeConfig)
      expect(auth.headers.Authorization).toBeUndefined()
      expect(Buffer.from(auth.tls.cert as Buffer).toString()).toBe(certPem)
      expect(Buffer.from(auth.tls.key as Buffer).toString()).toBe(keyPem)
    }),
  )

  it.scoped("resolves relative certificate paths against the kubeconfig's folder and re-reads them", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      fs.mkdirSync(path.join(dir, "pki"))
      fs.writeFileSync(path.join(dir, "pki", "alice.crt"), certPem)
      fs.writeFileSync(path.join(dir, "pki", "alice.key"), keyPem)
      const file = path.join(dir, "config")
      fs.writeFileSync(
        file,
        kubeconfig({
          server: "https://127.0.0.1:6443",
          user: "alice",
          userBody: "      client-certificate: pki/alice.crt\n      client-key: pki/alice.key",
        }),
      )
      const source = yield* fromFiles([file])
      expect(source.identity.certificateSubject).toBe("O=dev, CN=alice")
      const first = yield* resolveAuth(source.kubeConfig)
      // A renewed key pair on disk (cert-manager, kubeadm) must reach the next connection pool.
      fs.writeFileSync(path.join(dir, "pki", "alice.key"), `${keyPem}\n`)
      const second = yield* resolveAuth(source.kubeConfig)
      expect(second.transportKey).not.toBe(first.transportKey)
      expect((yield* resolveAuth(source.kubeConfig)).transportKey).toBe(second.transportKey)
    }),
  )
})

describe("kubeconfig with an exec plugin", () => {
  it.scoped("runs the plugin and sends the token it prints", () =>
    Effect.gen(function* () {
      const script = `console.log(JSON.stringify({apiVersion:"client.authentication.k8s.io/v1",kind:"ExecCredential",status:{token:"from-exec"}}))`
      const source = yield* fromString(
        kubeconfig({
          server: "https://127.0.0.1:6443",
          user: "cloud",
          userBody: [
            "      exec:",
            "        apiVersion: client.authentication.k8s.io/v1",
            `        command: ${JSON.stringify(process.execPath)}`,
            `        args: ["-e", ${JSON.stringify(script)}]`,
          ].join("\n"),
        }),
      )
      expect(source.identity.authMethod).toBe("exec")
      const auth = yield* resolveAuth(source.kubeConfig)
      expect(auth.headers.Authorization).toBe("Bearer from-exec")
    }),
  )

  it.scoped("reports a failing plugin as a KubeConfigError", () =>
    Effect.gen(function* () {
      const source = yield* fromString(
        kubeconfig({
          server: "https://127.0.0.1:6443",
          user: "cloud",
          userBody: [
            "      exec:",
            "        apiVersion: client.authentication.k8s.io/v1",
            `        command: ${JSON.stringify(process.execPath)}`,
            `        args: ["-e", "process.stderr.write('login expired'); process.exit(3)"]`,
          ].join("\n"),
        }),
      )
      const error = yield* Effect.flip(resolveAuth(source.kubeConfig))
      expect(error._tag).toBe("KubeConfigError")
      expect(error.message).toContain("login expired")
    }),
  )
})

describe("in-cluster service account", () => {
  const serviceAccount = (root: string) => {
    const dir = path.join(root, "var/run/secrets/kubernetes.io/serviceaccount")
    fs.mkdirSync(dir, { recursive: true })
    fs.writeFileSync(path.join(dir, "ca.crt"), certPem)
    fs.writeFileSync(path.join(dir, "namespace"), "controllers")
    fs.writeFileSync(path.join(dir, "token"), "token-one\n")
    return dir
  }

  it.scoped("reads the mounted token, re-reading it once it may have been rotated", () =>
    Effect.gen(function* () {
      const root = yield* tempDir
      const dir = serviceAccount(root)
      const source = yield* inCluster({ root }).pipe(
        withEnv({ KUBERNETES_SERVICE_HOST: "10.96.0.1", KUBERNETES_SERVICE_PORT: "443" }),
      )
      expect(source.server).toBe("https://10.96.0.1:443")
      expect(source.origin).toBe("in-cluster service account")
      expect(source.identity).toMatchObject({ authMethod: "token-file", namespace: "controllers" })
      // The trailing newline of the file must not reach the header.
      expect((yield* resolveAuth(source.kubeConfig)).headers.Authorization).toBe("Bearer token-one")

      fs.writeFileSync(path.join(dir, "token"), "token-two")
      // client-node's token-file authenticator re-reads the file once a minute (as client-go does).
      vi.useFakeTimers({ toFake: ["Date"] })
      vi.setSystemTime(Date.now() + 61_000)
      expect((yield* resolveAuth(source.kubeConfig)).headers.Authorization).toBe("Bearer token-two")
    }),
  )

  it.scoped("wraps an IPv6 service host in brackets", () =>
    Effect.gen(function* () {
      const root = yield* tempDir
      serviceAccount(root)
      const source = yield* inCluster({ root }).pipe(
        withEnv({ KUBERNETES_SERVICE_HOST: "fd00::1", KUBERNETES_SERVICE_PORT: "443" }),
      )
      expect(source.server).toBe("https://[fd00::1]:443")
    }),
  )

  it.scoped("fails without the service environment", () =>
    Effect.gen(function* () {
      const root = yield* tempDir
      serviceAccount(root)
      const error = yield* Effect.flip(inCluster({ root }).pipe(withEnv({})))
      expect(error.message).toContain("KUBERNETES_SERVICE_HOST")
    }),
  )
})

describe("fromDefault", () => {
  it.scoped(
    "merges a KUBECONFIG list: first definition and first current-context win, missing files skipped",
    () =>
      Effect.gen(function* () {
        const dir = yield* tempDir
        const a = path.join(dir, "a")
        const b = path.join(dir, "b")
        fs.writeFileSync(
          a,
          kubeconfig({
            server: "https://a.example:6443",
            user: "ua",
            userBody: "      token: a",
            context: "first",
          }),
        )
        fs.writeFileSync(
          b,
          kubeconfig({
            server: "https://b.example:6443",
            user: "ub",
            userBody: "      token: b",
            context: "second",
          }),
        )
        const kubeconfigEnv = [path.join(dir, "missing"), a, b].join(path.delimiter)
        const source = yield* fromDefault().pipe(withEnv({ KUBECONFIG: kubeconfigEnv, HOME: dir }))
        expect(source.identity.context).toBe("first")
        // Both files name their cluster c1: the first file's definition wins.
        expect(source.server).toBe("https://a.example:6443")
        expect(source.kubeConfig.getContexts().map((c) => c.name)).toEqual(["first", "second"])
      }),
  )

  it.scoped("prefers the service account over ~/.kube/config when KUBECONFIG is unset", () =>
    Effect.gen(function* () {
      const root = yield* tempDir
      const sa = path.join(root, "var/run/secrets/kubernetes.io/serviceaccount")
      fs.mkdirSync(sa, { recursive: true })
      fs.writeFileSync(path.join(sa, "token"), "t")
      fs.mkdirSync(path.join(root, ".kube"))
      fs.writeFileSync(
        path.join(root, ".kube", "config"),
        kubeconfig({ server: "https://home.example", user: "me", userBody: "      token: x" }),
      )
      const env = { KUBERNETES_SERVICE_HOST: "10.0.0.1", KUBERNETES_SERVICE_PORT: "443", HOME: root }
      expect((yield* fromDefault({ root }).pipe(withEnv(env))).origin).toBe("in-cluster service account")
      const home = yield* fromDefault({ root }).pipe(withEnv({ HOME: root }))
      expect(home.server).toBe("https://home.example")
    }),
  )

  it.scoped("fails (instead of guessing localhost:8080) when there is no configuration at all", () =>
    Effect.gen(function* () {
      const root = yield* tempDir
      const error = yield* Effect.flip(fromDefault({ root }).pipe(withEnv({ HOME: root })))
      expect(error._tag).toBe("KubeConfigError")
      expect(error.message).toContain("no Kubernetes configuration")
    }),
  )
})

describe("invalid kubeconfigs", () => {
  it.scoped("name the problem", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const missing = yield* Effect.flip(fromFiles([path.join(dir, "nope")]))
      expect(missing.message).toContain("file not found")

      const yaml = kubeconfig({ server: "https://127.0.0.1:6443", user: "u", userBody: "      token: t" })
      const noContext = yield* Effect.flip(fromString(yaml, { context: "other" }))
      expect(noContext.message).toContain('context "other" not found')

      const badUser = yield* Effect.flip(
        fromString(yaml.replace("user: u\n      namespace", "user: ghost\n      namespace")),
      )
      expect(badUser.message).toContain('user "ghost"')

      const noServer = yield* Effect.flip(
        fromString(yaml.replace("server: https://127.0.0.1:6443", "server: ''")),
      )
      expect(noServer._tag).toBe("KubeConfigError")
    }),
  )
})
