/**
 * Per-file test identity: each test file talks to the shared server under its own
 * `application_name`, so that its backends can be told apart and checked at its end.
 */
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { afterAll, inject } from "vitest"
import { eventuallyNoBackends } from "./backends.js"

/** The URL of the run's shared server (see globalSetup). */
export const databaseUrl = (): string => inject("databaseUrl")

/** An `application_name` derived from the test file: `sp-<file name>`, at most 63 bytes. */
export const applicationNameOf = (fileUrl: string): string =>
  `sp-${Path.basename(fileURLToPath(fileUrl)).replace(/\.test\.ts$/, "")}`.slice(0, 63)

/**
 * Registers the end-of-file check that no backend of this file is left on the server and
 * returns the file's `application_name` and the server URL.
 */
export const testDb = (fileUrl: string, options: { readonly within?: Duration.DurationInput } = {}) => {
  const applicationName = applicationNameOf(fileUrl)
  const url = databaseUrl()
  afterAll(() =>
    Effect.runPromise(eventuallyNoBackends(url, applicationName, { within: options.within ?? "2 seconds" }))
  )
  return { applicationName, url } as const
}
