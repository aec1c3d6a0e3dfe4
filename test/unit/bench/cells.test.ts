import { describe, expect, it } from "vitest"
import { asCell, cell, summariseCells, summariseFigure } from "../../bench/cells.js"

describe("the benchmark table's cells", () => {
  it("prints one run as the figures it holds, n/a for a missing one", () => {
    expect(summariseCells([cell`${138.4} / ${undefined}`])).toBe("138.4 / n/a")
    expect(summariseCells([asCell(2.6)])).toBe("2.6")
    expect(summariseCells([cell`${0.12} (${0})`])).toBe("0.12 (0)")
  })

  it("summarises several runs figure by figure: median and (min–max), the number alone when they agree", () => {
    const runs = [cell`${4.5} / ${3}`, cell`${5.3} / ${3}`, cell`${4.8} / ${3}`]
    expect(summariseCells(runs)).toBe("4.8 (4.5–5.3) / 3")
  })

  it("takes the mean of the middle two of an even count, one digit finer", () => {
    expect(summariseFigure([3, 4])).toBe("3.5 (3–4)")
    expect(summariseFigure([0.1, 0.2, 0.4, 9])).toBe("0.3 (0.1–9)")
  })

  it("lists text that cannot be averaged, and leaves out runs without the figure", () => {
    expect(summariseFigure([0, "SIGKILL", 0])).toBe("0,SIGKILL")
    expect(summariseCells([undefined, asCell(7), asCell(9)])).toBe("8 (7–9)")
    expect(summariseCells([undefined, asCell(undefined)])).toBe("n/a")
  })
})
