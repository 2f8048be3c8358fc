/**
 * `pg` (and its `pg-pool`) and `pg-copy-streams` for the benchmarks, with the few types they
 * use: bench/package.json has neither `@types/pg` nor `@types/pg-copy-streams`, so the modules
 * are loaded untyped and described here.
 */
import { createRequire } from "node:module"
import type { Readable, Writable } from "node:stream"

export interface QueryResult<R> {
  readonly rows: Array<R>
  readonly rowCount: number | null
}

export interface Queryable {
  query<R = any>(text: string, values?: ReadonlyArray<unknown>): Promise<QueryResult<R>>
}

export interface Client {
  query<R = any>(text: string, values?: ReadonlyArray<unknown>): Promise<QueryResult<R>>
  /** Runs a submittable, e.g. a `pg-copy-streams` stream, and returns it. */
  query<S extends CopyFromStream | CopyToStream>(submittable: S): S
  connect(): Promise<void>
  end(): Promise<void>
  on(event: "error", listener: (error: Error) => void): this
}

export interface PoolClient extends Queryable {
  release(error?: Error | boolean): void
}

export interface Pool extends Queryable {
  connect(): Promise<PoolClient>
  end(): Promise<void>
  on(event: "error", listener: (error: Error) => void): this
}

export interface ClientConfig {
  readonly connectionString: string
  readonly application_name?: string
}

export interface PoolConfig extends ClientConfig {
  readonly max?: number
}

/** `COPY … FROM STDIN`: a writable of COPY data; `rowCount` once it finished. */
export interface CopyFromStream extends Writable {
  readonly rowCount: number
}

/** `COPY … TO STDOUT`: a readable of COPY data; `rowCount` once it ended. */
export interface CopyToStream extends Readable {
  readonly rowCount: number
}

// Loaded on first use, so that a contender that never touches `pg` (the Effect 4 ones outside
// the lifecycle measurements, postgres.js) carries neither its code nor its heap in its RSS.
const load = createRequire(import.meta.url)
const once = <A>(name: string): () => A => {
  let module: A | undefined
  return () => (module ??= load(name) as A)
}

const loadCopyStreams = once<{
  readonly from: (text: string) => CopyFromStream
  readonly to: (text: string) => CopyToStream
}>("pg-copy-streams")

/** `pg-copy-streams` (brianc's COPY streams over a `pg.Client`). */
export const copyStreams = {
  from: (text: string): CopyFromStream => loadCopyStreams().from(text),
  to: (text: string): CopyToStream => loadCopyStreams().to(text)
}

const loadPg = once<{
  readonly Client: new(config: ClientConfig) => Client
  readonly Pool: new(config: PoolConfig) => Pool
}>("pg")

const pg = {
  get Client() {
    return loadPg().Client
  },
  get Pool() {
    return loadPg().Pool
  }
}

export default pg
