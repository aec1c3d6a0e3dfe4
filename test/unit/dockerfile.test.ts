/**
 * The Dockerfile passes dockerfile-utils' linter (every rule at "error", nothing reported), and
 * the .dockerignore lets in what it copies. What the image does (its USER, exec-form ENTRYPOINT,
 * bundle-only contents, read-only root) is checked by running it: test/integration/container-smoke.
 */
import { readFileSync } from "node:fs"
import { ValidationSeverity, type ValidatorSettings, validate } from "dockerfile-utils"
import { describe, expect, it } from "vitest"
import { instructions, runtimeStage } from "../support/dockerfile.js"

const dockerfile = readFileSync("Dockerfile", "utf8")
const dockerignore = readFileSync(".dockerignore", "utf8")

const strict: ValidatorSettings = {
  deprecatedMaintainer: ValidationSeverity.ERROR,
  directiveCasing: ValidationSeverity.ERROR,
  emptyContinuationLine: ValidationSeverity.ERROR,
  instructionCasing: ValidationSeverity.ERROR,
  instructionCmdMultiple: ValidationSeverity.ERROR,
  instructionEntrypointMultiple: ValidationSeverity.ERROR,
  instructionHealthcheckMultiple: ValidationSeverity.ERROR,
  instructionJSONInSingleQuotes: ValidationSeverity.ERROR,
  instructionWorkdirRelative: ValidationSeverity.ERROR,
}

describe("Dockerfile", () => {
  it("passes dockerfile-utils lint with every rule as an error", () => {
    const problems = validate(dockerfile, strict).map((d) => `line ${d.range.start.line + 1}: ${d.message}`)
    expect(problems).toEqual([])
  })

  it("the linter is live: it reports a broken Dockerfile", () => {
    const broken = "FROM node:24\nMAINTAINER someone\nworkdir app\nENTRYPOINT ['node', 'x']\nEXPOSE port\n"
    expect(validate(broken, strict).length).toBeGreaterThanOrEqual(3)
  })

  const all = instructions(dockerfile)

  it(".dockerignore shuts everything out by default and lets in what the Dockerfile copies", () => {
    const lines = dockerignore
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => l !== "" && !l.startsWith("#"))
    expect(lines[0]).toBe("*")
    const allowed = lines.filter((l) => l.startsWith("!")).map((l) => l.slice(1))
    // Everything the Dockerfile COPYs from the context is allowed in.
    const copied = all
      .filter((i) => i.keyword === "COPY" && !i.args.includes("--from="))
      .flatMap((i) => i.args.split(/\s+/).slice(0, -1))
    for (const source of copied) expect(allowed.some((a) => a === source || a === `${source}/`)).toBe(true)
  })

  it("the runtime stage's ENV is read as the smoke test and the benchmark apply it", () => {
    const stage = runtimeStage(
      'FROM node:24 AS build\nENV BUILD_ONLY=1\nFROM node:24\nENV A=1 B="two words"\nENV C=\nUSER 1000\nENTRYPOINT ["node", "m.mjs"]\n',
    )
    expect(stage.env).toEqual({ A: "1", B: "two words", C: "" })
    expect(() => runtimeStage('FROM node:24\nENV LEGACY form\nUSER 1000\nENTRYPOINT ["node"]\n')).toThrow(
      /expected KEY=value/,
    )
    expect(runtimeStage(dockerfile).env.NODE_ENV).toBe("production")
  })
})
