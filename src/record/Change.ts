/**
 * What the watchers tell the pipeline: an object now looks like this, or it is gone. Keyed by the
 * record id so that later changes to the same object replace earlier ones.
 */
import { Data } from "effect"
import type { InstanceRecord } from "./Payload.js"

export type Change = Data.TaggedEnum<{
  Upsert: { readonly record: InstanceRecord }
  Delete: { readonly id: string }
}>

export const Change = Data.taggedEnum<Change>()

export const upsert = (record: InstanceRecord): Change => Change.Upsert({ record })

export const remove = (id: string): Change => Change.Delete({ id })

export const idOf = (change: Change): string => (change._tag === "Upsert" ? change.record.id : change.id)
