/**
 * The benchmark table's cells: text with figures in it, the figures kept apart so that the cells of
 * several runs of one controller can be summarised figure by figure. On a shared machine one run says
 * little; the median and the spread (min–max) of a few say how far apart two controllers really are.
 */

/** One figure of a cell: a number, or text such as "n/a" or the signal a run ended with. */
export type Figure = number | string | null | undefined

export interface Cell {
  /** One more than the figures: the text before, between and after them. */
  readonly texts: ReadonlyArray<string>
  readonly figures: ReadonlyArray<Figure>
}

/** cell`${a} / ${b}`: a cell of two figures. */
export const cell = (texts: TemplateStringsArray, ...figures: ReadonlyArray<Figure>): Cell => ({
  texts: [...texts],
  figures,
})

/** A lone figure as a cell; undefined (the run has no such figure, e.g. no churn) stays undefined. */
export const asCell = (value: Cell | Figure): Cell | undefined =>
  value === undefined
    ? undefined
    : typeof value === "object" && value !== null
      ? value
      : { texts: ["", ""], figures: [value] }

const decimals = (n: number) => (String(n).split(".")[1] ?? "").length

/** The median; of an even count the mean of the middle two, which needs at most one digit more. */
const middle = (numbers: ReadonlyArray<number>): number => {
  const sorted = [...numbers].sort((a, b) => a - b)
  const half = Math.floor(sorted.length / 2)
  if (sorted.length % 2 === 1) return sorted[half]!
  const digits = Math.max(...sorted.map(decimals)) + 1
  return Math.round(((sorted[half - 1]! + sorted[half]!) / 2) * 10 ** digits) / 10 ** digits
}

/**
 * One figure over the runs: the median with (min–max) when the runs differ, the number alone when they
 * agree (a single run prints as it always did). Text, or a number beside text, cannot be averaged:
 * the distinct values are listed.
 */
export const summariseFigure = (values: ReadonlyArray<Figure>): string => {
  const numbers = values.filter((v): v is number => typeof v === "number" && Number.isFinite(v))
  if (numbers.length < values.length || numbers.length === 0) {
    return [...new Set(values.map((v) => String(v ?? "n/a")))].join(",")
  }
  const low = Math.min(...numbers)
  const high = Math.max(...numbers)
  return low === high ? String(low) : `${middle(numbers)} (${low}–${high})`
}

/** The cells of one column's runs as one; "n/a" when no run has the figure. */
export const summariseCells = (cells: ReadonlyArray<Cell | undefined>): string => {
  const present = cells.filter((c): c is Cell => c !== undefined)
  const first = present[0]
  if (first === undefined) return "n/a"
  return first.texts
    .map((text, i) => (i === 0 ? text : summariseFigure(present.map((c) => c.figures[i - 1])) + text))
    .join("")
}
