/** What `/readyz?verbose` and the progress log say about one watched type. */
import type { Option } from "effect"

export type TypePhase = "listing" | "synced" | "failing" | "forbidden"

export interface TypeStatus {
  readonly key: string
  readonly apiVersion: string
  readonly kind: string
  readonly phase: TypePhase
  /** Whether a list has completed at least once. */
  readonly synced: boolean
  readonly startedAt: number
  readonly objects: number
  readonly restarts: number
  readonly lastError: Option.Option<string>
}
