/**
 * Backpressure both ways (issue 17 line 2): memory stays bounded when one side of a COPY is
 * slower than the other. Each case runs in a child process (test/fixtures/child-copy-memory.ts)
 * so that its peak RSS is the copy's alone: 256 MiB go through, and the peak stays within
 * 128 MiB of the RSS before the copy. Without backpressure the peak grows by about the whole
 * copy (measured when this was written: +245 MiB for the export and +216 MiB for the load,
 * against +50 and +72 with it).
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { spawnFixture } from "../support/child.js"
import { testDb } from "../support/TestDb.js"

const { applicationName, url } = testDb(import.meta.url)

const MIB = 256
const BOUND_MIB = 128

interface Report {
  readonly mode: string
  readonly bytes: number
  readonly baselineMb: number
  readonly peakMb: number
  readonly seconds: number
}

const run = (mode: "to" | "from") =>
  Effect.gen(function*() {
    const child = yield* spawnFixture("child-copy-memory.ts", {
      DATABASE_URL: url,
      APPLICATION_NAME: applicationName,
      COPY_MODE: mode,
      COPY_MB: String(MIB)
    })
    const exit = yield* Effect.promise(() => child.exited)
    assert.strictEqual(exit.code, 0, child.output())
    const line = child.output().trim().split("\n").find((l) => l.startsWith("{"))
    assert.isDefined(line, child.output())
    return JSON.parse(line!) as Report
  })

describe("2. backpressure both ways", () => {
  it.scopedLive(
    `2. the stream pauses the socket when the consumer is slow: a ${MIB} MiB export read at 100 MiB/s stays within ${BOUND_MIB} MiB of RSS`,
    () =>
      Effect.gen(function*() {
        const report = yield* run("to")
        assert.strictEqual(report.bytes, MIB * 2 ** 20)
        const growth = report.peakMb - report.baselineMb
        assert.isBelow(growth, BOUND_MIB, `peak RSS grew by ${growth.toFixed(0)} MiB: ${JSON.stringify(report)}`)
      }),
    { timeout: 60_000 }
  )

  it.scopedLive(
    `2. the sink waits on the socket's drain: a ${MIB} MiB load from a source faster than the server stays within ${BOUND_MIB} MiB of RSS`,
    () =>
      Effect.gen(function*() {
        const report = yield* run("from")
        assert.strictEqual(report.bytes, MIB * 2 ** 20)
        const growth = report.peakMb - report.baselineMb
        assert.isBelow(growth, BOUND_MIB, `peak RSS grew by ${growth.toFixed(0)} MiB: ${JSON.stringify(report)}`)
      }),
    { timeout: 60_000 }
  )
})
