/**
 * Prints each payload as one JSON line on stdout instead of sending it: for trying the controller
 * against a cluster without a receiver, and for piping into other tools.
 */
import { Console, Layer } from "effect"
import { InstanceSink } from "./Sink.js"

export const make = InstanceSink.make((payload) => Console.log(JSON.stringify(payload)))

export const layer = Layer.succeed(InstanceSink, make)
