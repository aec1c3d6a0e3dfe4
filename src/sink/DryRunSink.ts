/**
 * Prints each payload as one JSON line on stdout instead of sending it: for trying the controller
 * against a cluster without a receiver, and for piping into other tools. Encoded with the wire
 * Schema, like the HTTP sender, so what is printed is exactly what would be sent.
 */
import { Console, Effect, Layer, Schema } from "effect"
import { SyncPayload } from "../record/Payload.js"
import { InstanceSink, SinkRejected } from "./Sink.js"

const encode = Schema.encode(Schema.parseJson(SyncPayload))

export const make = InstanceSink.make((payload) =>
  encode(payload).pipe(
    Effect.flatMap(Console.log),
    Effect.mapError((error) => new SinkRejected({ status: 0, body: `not printed: ${error.message}` })),
  ),
)

export const layer = Layer.succeed(InstanceSink, make)
