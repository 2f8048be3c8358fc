/**
 * Real PostgreSQL servers for tests, the demo and the benchmarks: the public test kit's
 * (`@scoped-pool/testing`'s `PgServer`), re-exported under this repository's old import path.
 */
export { dataDirPrefix, freePort, type PgServer, start, type StartOptions } from "@scoped-pool/testing/PgServer"
