/**
 * The GitHub Actions workflow passes actionlint (built from Go modules by test/kube/build.sh) and
 * does what the project needs from CI: Node.js 24, Go from test/kube/go.mod with the tool build
 * cached, lint + type-check + tests, and a multi-arch image pushed to GHCR only on main and tags.
 */
import { spawnSync } from "node:child_process"
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { parse } from "yaml"

const workflowDir = ".github/workflows"

/**
 * actionlint from KUBEBUILDER_ASSETS, else from test/kube/build.sh's cache (built if needed: the
 * cold build of the whole tool set takes minutes, a warm one milliseconds). Fails, never skips.
 */
const actionlint = (): string => {
  const assets = process.env.KUBEBUILDER_ASSETS
  if (
    assets !== undefined &&
    assets !== "" &&
    spawnSync("test", ["-x", join(assets, "actionlint")]).status === 0
  ) {
    return join(assets, "actionlint")
  }
  const built = spawnSync("bash", ["test/kube/build.sh"], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
  })
  const dir = built.stdout?.trim().split("\n").at(-1) ?? ""
  if (built.status !== 0 || dir === "" || spawnSync("test", ["-x", join(dir, "actionlint")]).status !== 0) {
    throw new Error(
      `No actionlint: KUBEBUILDER_ASSETS=${assets ?? "(unset)"} lacks it and test/kube/build.sh (exit ${built.status}) ` +
        "did not build it. Install Go (see test/kube/go.mod) and run test/kube/build.sh.",
    )
  }
  return join(dir, "actionlint")
}

const scratch = mkdtempSync(join(tmpdir(), "vectordb-sync-actionlint-"))
afterAll(() => rmSync(scratch, { recursive: true, force: true }))

const lint = (files: ReadonlyArray<string>) =>
  spawnSync(actionlint(), ["-no-color", "-oneline", ...files], { encoding: "utf8" })

// biome-ignore lint/suspicious/noExplicitAny: the workflow is checked field by field.
type Any = any
const workflow: Any = parse(readFileSync(join(workflowDir, "ci.yml"), "utf8"))
const steps = (job: string): ReadonlyArray<Record<string, Any>> => workflow.jobs[job].steps
/** A GitHub Actions expression, `${{ inner }}`. */
const expression = (inner: string) => `\${{ ${inner} }}`

describe("GitHub Actions workflow", () => {
  it("passes actionlint", { timeout: 900_000 }, () => {
    const files = readdirSync(workflowDir)
      .filter((f) => /\.ya?ml$/.test(f))
      .map((f) => join(workflowDir, f))
    expect(files).toContain(join(workflowDir, "ci.yml"))
    const result = lint(files)
    expect(result.error).toBeUndefined()
    expect(`${result.stdout}${result.stderr}`).toBe("")
    expect(result.status).toBe(0)
  })

  it("actionlint is live: it reports a broken workflow", { timeout: 900_000 }, () => {
    const broken = join(scratch, "broken.yml")
    writeFileSync(
      broken,
      `on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n      - uses: actions/checkout@v6\n        with: { not-an-input: 1 }\n      - run: echo ${expression("github.nope")}\n`,
    )
    const result = lint([broken])
    expect(result.status).not.toBe(0)
    expect(result.stdout).toContain("not-an-input")
  })

  it("tests on Node.js 24 with the test tools built by the Go of test/kube/go.mod, cached", () => {
    const test = steps("test")
    expect(test.find((s) => s.uses?.startsWith("actions/setup-node@"))?.with["node-version"]).toBe(24)
    const go = test.find((s) => s.uses?.startsWith("actions/setup-go@"))
    expect(go?.with["go-version-file"]).toBe("test/kube/go.mod")
    const cache = test.find((s) => s.uses?.startsWith("actions/cache@"))
    expect(cache?.with.path).toBe("~/.cache/k8s-vectordb-sync/kube-tools")
    for (const input of ["test/kube/go.mod", "test/kube/go.sum", "test/kube/build.sh"]) {
      expect(cache?.with.key).toContain(input)
    }
    const runs = test.filter((s) => typeof s.run === "string").map((s) => s.run.trim())
    expect(runs).toEqual(expect.arrayContaining(["npm run lint", "npm run typecheck", "npm test"]))
    expect(runs.some((r) => r.includes("test/kube/build.sh") && r.includes("KUBEBUILDER_ASSETS"))).toBe(true)
  })

  it("builds amd64 and arm64 and pushes to GHCR only on pushes (main, version tags)", () => {
    expect(workflow.on.push.branches).toEqual(["main"])
    expect(workflow.on.push.tags).toEqual(["v*.*.*"])
    expect(workflow.jobs.image.needs).toBe("test")
    expect(workflow.jobs.image.permissions).toEqual({ contents: "read", packages: "write" })
    const image = steps("image")
    const build = image.find((s) => s.uses?.startsWith("docker/build-push-action@"))
    expect(build?.with.platforms).toBe("linux/amd64,linux/arm64")
    expect(build?.with.push).toBe(expression("github.event_name == 'push'"))
    expect(image.find((s) => s.uses?.startsWith("docker/login-action@"))?.if).toBe(
      "github.event_name == 'push'",
    )
    expect(image.some((s) => s.uses?.startsWith("docker/setup-qemu-action@"))).toBe(true)
    expect(image.some((s) => s.uses?.startsWith("docker/setup-buildx-action@"))).toBe(true)
  })
})
