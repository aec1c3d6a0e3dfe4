import { readFileSync } from "node:fs"
import { describe, expect, it } from "@effect/vitest"
import {
  configReference,
  defaultValue,
  type Variable,
  Variables,
  variables,
  type WithDefault,
} from "../../../src/config/Variables.js"
import { readConfigTable, renderConfigTable, replaceConfigTable } from "../../support/configTable.js"

const withDefault = (v: Variable<unknown>): v is WithDefault<unknown> => v.default !== undefined

describe("the declarations", () => {
  it("every declared default parses with its own parser", () => {
    const declared = variables.filter(withDefault)
    expect(declared.length).toBeGreaterThan(20)
    for (const v of declared) expect(() => defaultValue(v), v.name).not.toThrow()
  })

  it("a default that does not parse is refused, naming the variable", () => {
    const broken = { ...Variables.BATCH_MAX_SIZE, default: "fifty" }
    expect(() => defaultValue(broken)).toThrow(
      "BATCH_MAX_SIZE: the declared default does not parse, expected an integer between 1 and 10000",
    )
  })

  it("each variable is named after its key, and every name is an environment variable's", () => {
    for (const [key, v] of Object.entries(Variables)) expect(v.name).toBe(key)
    for (const row of configReference) expect(row.name).toMatch(/^[A-Z][A-Z0-9_]*$/)
    expect(new Set(configReference.map((v) => v.name)).size).toBe(configReference.length)
  })

  it("the reference lists each variable, then its aliases, which have no default of their own", () => {
    const instances = configReference.findIndex((v) => v.name === "INSTANCES_ENDPOINT")
    expect(configReference[instances + 1]).toEqual({
      name: "REST_ENDPOINT",
      default: undefined,
      description: Variables.INSTANCES_ENDPOINT.aliases[0]?.description,
    })
    expect(configReference.map((v) => v.name)).toEqual(
      variables.flatMap((v) => [v.name, ...v.aliases.map((a) => a.name)]),
    )
  })

  it("descriptions fit in one markdown table cell", () => {
    for (const v of configReference) {
      expect(v.description, v.name).not.toMatch(/[|\n]/)
      expect(v.description.length, v.name).toBeGreaterThan(10)
    }
  })
})

describe("README", () => {
  it("README's configuration table is the one `npm run docs:config` generates from the declarations", () => {
    const readme = readFileSync(new URL("../../../README.md", import.meta.url), "utf8")
    expect(readConfigTable(readme), "README.md is out of date: run `npm run docs:config`").toBe(
      renderConfigTable(configReference),
    )
  })

  it("the generator replaces exactly the table, so a stale README would be caught and fixed", () => {
    const readme = [
      "# x",
      "## Configuration",
      "text",
      "| Variable | Default | Meaning and expected form |",
      "| --- | --- | --- |",
      "| `OLD` | (unset) | gone |",
      "",
      "## Next",
      "",
    ].join("\n")
    const table = renderConfigTable(configReference)
    const updated = replaceConfigTable(readme, table)
    expect(readConfigTable(readme)).not.toBe(table)
    expect(readConfigTable(updated ?? "")).toBe(table)
    expect(updated?.startsWith("# x\n## Configuration\ntext\n| Variable |")).toBe(true)
    expect(updated?.endsWith("\n\n## Next\n")).toBe(true)
  })

  it("a default is shown in code, an unset variable as (unset)", () => {
    const table = renderConfigTable(configReference)
    expect(table).toContain(`| \`BATCH_MAX_SIZE\` | \`${Variables.BATCH_MAX_SIZE.default}\` | `)
    expect(table).toContain("| `WATCH_RESOURCE_TYPES` | (unset) | ")
  })
})
