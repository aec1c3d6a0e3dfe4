/**
 * The byte count the batcher relies on is the size of the body the HTTP sink sends: the payload
 * encoded with its wire Schema, as JSON.
 */
import { describe, expect, it } from "@effect/vitest"
import { Schema } from "effect"
import {
  CapabilityChange,
  toPayload as capabilitiesPayload,
  codec as capabilityCodec,
} from "../../../src/capabilities/Capabilities.js"
import { instanceCodec } from "../../../src/pipeline/KeyedCodec.js"
import { toPayload } from "../../../src/pipeline/Pipeline.js"
import type { Change } from "../../../src/record/Change.js"
import { CapabilitiesPayload, payloadBytes, SyncPayload } from "../../../src/record/Payload.js"
import { remove, upsert } from "../fixtures.js"

/** The body as the sink encodes it (`HttpClientRequest.schemaBodyJson`). */
const body = <A, I>(schema: Schema.Schema<A, I>, payload: A) =>
  Buffer.byteLength(JSON.stringify(Schema.encodeSync(schema)(payload)), "utf8")

const counted = <C extends { readonly _tag: "Upsert" | "Delete" }>(
  batch: ReadonlyArray<C>,
  sizeOf: (change: C) => number,
) => {
  const upserts = batch.filter((change) => change._tag === "Upsert").length
  return payloadBytes(
    batch.reduce((sum, change) => sum + sizeOf(change), 0),
    upserts,
    batch.length - upserts,
  )
}

describe("payloadBytes with the codecs' sizes", () => {
  const batches: ReadonlyArray<[string, ReadonlyArray<Change>]> = [
    ["empty", []],
    ["one upsert", [upsert("a")]],
    ["one delete", [remove("a")]],
    [
      "deletes and upserts, multi-byte and escaped characters",
      [
        remove("gone-1"),
        remove("gone-2"),
        upsert("a", { app: "wéb", quote: 'say "hi"\n', emoji: "🚀", control: "\u0001" }),
        upsert("b"),
        upsert("c", { ключ: "значение" }),
      ],
    ],
  ]
  for (const [name, batch] of batches) {
    it(`is the byte length of the encoded instance payload: ${name}`, () => {
      expect(counted(batch, (change) => instanceCodec.measure(change).size)).toBe(
        body(SyncPayload, toPayload(batch)),
      )
    })
  }

  it("is the byte length of the encoded capabilities payload", () => {
    const batch = [
      CapabilityChange.Delete({ name: "olds.example.com" }),
      CapabilityChange.Upsert({ name: "certificates.cert-manager.io", kinds: "Certificate:v1" }),
      CapabilityChange.Upsert({ name: "zertifikate.beispiel.de", kinds: "Zertifikat:v1" }),
    ]
    expect(counted(batch, (change) => capabilityCodec.measure(change).size)).toBe(
      body(CapabilitiesPayload, capabilitiesPayload(batch)),
    )
  })
})
