/**
 * Due times of waiting upserts, smallest first (a binary min-heap); the keyed state skips entries
 * that moved on when it meets them.
 */
export class DueHeap<E extends { readonly dueAt: number }> {
  private items: Array<{ readonly id: string; readonly entry: E }> = []

  get length(): number {
    return this.items.length
  }

  push(id: string, entry: E): void {
    const items = this.items
    items.push({ id, entry })
    let i = items.length - 1
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (items[parent]!.entry.dueAt <= items[i]!.entry.dueAt) break
      ;[items[parent], items[i]] = [items[i]!, items[parent]!]
      i = parent
    }
  }

  peek(): { readonly id: string; readonly entry: E } | undefined {
    return this.items[0]
  }

  pop(): void {
    const items = this.items
    const last = items.pop()
    if (last === undefined || items.length === 0) return
    items[0] = last
    let i = 0
    for (;;) {
      const left = 2 * i + 1
      const right = left + 1
      let smallest = i
      if (left < items.length && items[left]!.entry.dueAt < items[smallest]!.entry.dueAt) smallest = left
      if (right < items.length && items[right]!.entry.dueAt < items[smallest]!.entry.dueAt) smallest = right
      if (smallest === i) return
      ;[items[smallest], items[i]] = [items[i]!, items[smallest]!]
      i = smallest
    }
  }

  rebuild(live: Iterable<[string, E]>): void {
    this.items = []
    for (const [id, entry] of live) this.push(id, entry)
  }
}
