/**
 * Vitest global setup: one real PostgreSQL for the whole run.
 *
 * `TEST_DATABASE_URL` names an existing server; otherwise an embedded server is started in a
 * temp dir and stopped (dir removed) when the run ends, also when it fails. An interrupted
 * run kills it on exit (see PgServer).
 */
import type { TestProject } from "vitest/node"
import * as PgServer from "./PgServer.js"

declare module "vitest" {
  export interface ProvidedContext {
    readonly databaseUrl: string
  }
}

export default async function setup(project: TestProject) {
  const external = process.env.TEST_DATABASE_URL
  if (external !== undefined && external !== "") {
    project.provide("databaseUrl", external)
    return
  }
  const server = await PgServer.start()
  project.provide("databaseUrl", server.url)
  return () => server.stop()
}
