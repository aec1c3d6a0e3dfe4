/**
 * The GitHub Actions workflow passes actionlint (built from Go modules by test/kube/build.sh with
 * the other Kubernetes test tools). An integration test, because a cold tool build runs Go for
 * minutes: `npm run test:unit` never builds anything. What the workflow does is judged by its
 * linter, not by asserting its text.
 */
import { spawnSync } from "node:child_process"
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"

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
})
