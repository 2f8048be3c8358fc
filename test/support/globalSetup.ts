/**
 * Vitest global setup: one real PostgreSQL for the whole run, from the public test kit
 * (`@scoped-pool/testing`): `TEST_DATABASE_URL`, or else an embedded server in a temp dir,
 * stopped (dir removed) when the run ends, also when it fails or is interrupted.
 *
 * Test files read it as `databaseUrl` (this repository's `testDb`) and through the kit's own
 * key (`PgTest.layer`).
 */
import * as PgTestSetup from "@scoped-pool/testing/PgTestSetup"
import type { TestProject } from "vitest/node"

declare module "vitest" {
  export interface ProvidedContext {
    readonly databaseUrl: string
  }
}

export default async function setup(project: TestProject) {
  const handle = await PgTestSetup.start()
  project.provide("databaseUrl", handle.url)
  project.provide("@scoped-pool/testing", { url: handle.url, template: handle.template })
  return () => handle.stop()
}
