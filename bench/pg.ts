/**
 * `pg` (and its `pg-pool`) for the benchmarks, with the few types they use: bench/package.json
 * has `pg` but not `@types/pg`, so the module is loaded untyped and described here.
 */
import { createRequire } from "node:module"

export interface QueryResult<R> {
  readonly rows: Array<R>
  readonly rowCount: number | null
}

export interface Queryable {
  query<R = any>(text: string, values?: ReadonlyArray<unknown>): Promise<QueryResult<R>>
}

export interface Client extends Queryable {
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

const pg = createRequire(import.meta.url)("pg") as {
  readonly Client: new(config: ClientConfig) => Client
  readonly Pool: new(config: PoolConfig) => Pool
}

export default pg
