/**
 * Certificates for the test control plane, made with the `openssl` CLI.
 *
 * Why the CLI: node:crypto can generate keys but cannot issue X.509 certificates, and a hand-rolled
 * ASN.1 encoder would be more code to trust than the Debian `openssl` package it replaces. Every
 * control plane gets a fresh CA, so nothing here outlives one test run.
 */
import { execFile } from "node:child_process"
import { randomBytes } from "node:crypto"
import { writeFile } from "node:fs/promises"
import { join } from "node:path"
import { promisify } from "node:util"

const run = promisify(execFile)

/** A key pair and certificate on disk, PEM encoded. */
export interface CertFiles {
  readonly certFile: string
  readonly keyFile: string
}

export interface Pki {
  readonly caFile: string
  readonly caKeyFile: string
  /** Serving certificate for 127.0.0.1 and localhost (kube-apiserver, kube-controller-manager). */
  readonly serving: CertFiles
  /** CN=admin, O=system:masters: full access, bypasses RBAC. */
  readonly admin: CertFiles
  /** Identity kube-controller-manager runs as; in system:masters so every controller may act. */
  readonly controllerManager: CertFiles
  /** An authenticated user in no group: RBAC grants it discovery only. */
  readonly user: CertFiles & { readonly userName: string }
  /** RSA key pair that signs and verifies service-account tokens. */
  readonly serviceAccountKeyFile: string
  readonly serviceAccountPublicKeyFile: string
}

/** Fails with an actionable message when the `openssl` CLI is absent. */
export const checkOpenssl = async (): Promise<void> => {
  try {
    await run("openssl", ["version"])
  } catch (cause) {
    throw new Error(
      "The test control plane needs the `openssl` CLI to make its certificates and none was found on PATH. " +
        "Install it (Debian/Ubuntu: `apt-get install openssl`).",
      { cause },
    )
  }
}

const openssl = async (args: ReadonlyArray<string>): Promise<void> => {
  try {
    await run("openssl", [...args])
  } catch (cause) {
    const stderr = (cause as { stderr?: string }).stderr ?? ""
    throw new Error(`openssl ${args[0]} failed: ${stderr.trim()}`, { cause })
  }
}

// Certificates only have to outlive one test run; a short life keeps leaked files harmless.
const DAYS = "2"
// P-256 keys are generated in milliseconds, RSA-2048 in up to a second on a busy 2-core box.
const EC_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

const issue = async (
  dir: string,
  ca: CertFiles,
  name: string,
  subject: string,
  extensions: ReadonlyArray<string>,
): Promise<CertFiles> => {
  const keyFile = join(dir, `${name}.key`)
  const csrFile = join(dir, `${name}.csr`)
  const certFile = join(dir, `${name}.crt`)
  const extFile = join(dir, `${name}.ext`)
  await writeFile(extFile, `${extensions.join("\n")}\n`)
  await openssl(["req", "-new", ...EC_KEY, "-keyout", keyFile, "-subj", subject, "-out", csrFile])
  await openssl([
    "x509",
    "-req",
    "-in",
    csrFile,
    "-CA",
    ca.certFile,
    "-CAkey",
    ca.keyFile,
    // A random serial per certificate; -CAcreateserial would race between parallel issues.
    "-set_serial",
    `0x${randomBytes(16).toString("hex")}`,
    "-days",
    DAYS,
    "-extfile",
    extFile,
    "-out",
    certFile,
  ])
  return { certFile, keyFile }
}

const clientExtensions = [
  "basicConstraints=critical,CA:FALSE",
  "keyUsage=critical,digitalSignature,keyEncipherment",
  "extendedKeyUsage=clientAuth",
]

/** Makes a CA and every certificate and key the control plane and its clients need, in `dir`. */
export const makePki = async (dir: string, userName: string): Promise<Pki> => {
  const ca: CertFiles = { certFile: join(dir, "ca.crt"), keyFile: join(dir, "ca.key") }
  await openssl([
    "req",
    "-x509",
    ...EC_KEY,
    "-keyout",
    ca.keyFile,
    "-out",
    ca.certFile,
    "-days",
    DAYS,
    "-subj",
    "/CN=k8s-vectordb-sync-test-ca",
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
  ])

  const serviceAccountKeyFile = join(dir, "service-account.key")
  const serviceAccountPublicKeyFile = join(dir, "service-account.pub")
  const [serving, admin, controllerManager, user] = await Promise.all([
    issue(dir, ca, "serving", "/CN=kube-apiserver", [
      "basicConstraints=critical,CA:FALSE",
      "keyUsage=critical,digitalSignature,keyEncipherment",
      "extendedKeyUsage=serverAuth",
      "subjectAltName=IP:127.0.0.1,DNS:localhost",
    ]),
    issue(dir, ca, "admin", "/O=system:masters/CN=admin", clientExtensions),
    issue(
      dir,
      ca,
      "kube-controller-manager",
      "/O=system:masters/CN=system:kube-controller-manager",
      clientExtensions,
    ),
    issue(dir, ca, "user", `/CN=${userName}`, clientExtensions),
    (async () => {
      await openssl([
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:2048",
        "-out",
        serviceAccountKeyFile,
      ])
      await openssl(["pkey", "-in", serviceAccountKeyFile, "-pubout", "-out", serviceAccountPublicKeyFile])
    })(),
  ])

  return {
    caFile: ca.certFile,
    caKeyFile: ca.keyFile,
    serving,
    admin,
    controllerManager,
    user: { ...user, userName },
    serviceAccountKeyFile,
    serviceAccountPublicKeyFile,
  }
}
