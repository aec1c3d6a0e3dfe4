/**
 * The README's configuration table, rendered from `configReference` (the rows of the declarations in
 * src/config/Variables.ts), and the code to find it in the README. `npm run docs:config`
 * (docsConfig.ts) rewrites the table; test/unit/config/Variables.test.ts only compares the README
 * with what it would write.
 */
import type { ConfigVariable } from "../../src/config/Variables.js"

export const TABLE_HEADER = ["| Variable | Default | Meaning and expected form |", "| --- | --- | --- |"]

export const renderConfigTable = (reference: ReadonlyArray<ConfigVariable>): string =>
  [
    ...TABLE_HEADER,
    ...reference.map(
      (v) =>
        `| \`${v.name}\` | ${v.default === undefined ? "(unset)" : `\`${v.default}\``} | ${v.description} |`,
    ),
  ].join("\n")

const SECTION = "## Configuration"

/** The first markdown table inside the README's "## Configuration" section, or undefined. */
export const findConfigTable = (
  readme: string,
): { readonly start: number; readonly end: number } | undefined => {
  const sectionStart = readme.indexOf(`\n${SECTION}\n`)
  if (sectionStart < 0) return undefined
  const next = readme.indexOf("\n## ", sectionStart + 1)
  const sectionEnd = next < 0 ? readme.length : next
  const tableStart = readme.indexOf("\n| Variable |", sectionStart)
  if (tableStart < 0 || tableStart > sectionEnd) return undefined
  let end = tableStart + 1
  while (end < sectionEnd && readme.startsWith("|", end)) {
    const eol = readme.indexOf("\n", end)
    end = eol < 0 ? readme.length : eol + 1
  }
  return { start: tableStart + 1, end }
}

export const readConfigTable = (readme: string): string | undefined => {
  const at = findConfigTable(readme)
  return at === undefined ? undefined : readme.slice(at.start, at.end).trimEnd()
}

export const replaceConfigTable = (readme: string, table: string): string | undefined => {
  const at = findConfigTable(readme)
  return at === undefined ? undefined : `${readme.slice(0, at.start)}${table}\n${readme.slice(at.end)}`
}
