/**
 * D10, as a property: random connection strings — URIs (well formed or not: a missing or
 * single slash, no `@`, a bad port, stray parameters) and `key=value` strings — carry a random
 * password in every place one can be written (the URI's user info, raw or percent-encoded; a
 * `password=` parameter, percent-encoded, quoted or bare; the `password` option, string or
 * `Redacted`), and `PgPool.make` is run on each: it fails with a `PoolConfigError`, or
 * connects through a socket that refuses (no network, no server) and fails with a
 * `PgConnectError` (were it to build, a statement would run). No message, cause, `Cause.pretty`, JSON dump or captured log line may
 * contain a character of the password: passwords are drawn partly from Greek letters, which
 * nothing else here contains, so even a one-letter piece (or its percent-encoding) is caught.
 *
 * Out of scope by the grammars: a URI whose user info has no `@` after it (`postgres://u:1/x`
 * is host `u`, port 1, database `x` to any parser: nothing there is a password), a bare
 * `key=value` password holding a space, or a raw `&` in a URI query's password — there the
 * rest *is* other parameters, to libpq as to us (and our errors never name a word read after
 * a bare password: `connString.test.ts`).
 *
 * Runs `PG_SECRETS_RUNS` cases (default 1,000, as in CI; a few seconds). The long run:
 *
 *   PG_SECRETS_RUNS=10000 pnpm vitest run packages/pg/test/secrets.prop.test.ts
 *
 * A failure prints fast-check's seed and path; replay it with `PG_SECRETS_SEED=<seed>
 * PG_SECRETS_PATH=<path>` and the same command.
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import { assert, describe, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FastCheck from "effect/FastCheck"
import * as Redacted from "effect/Redacted"
import * as Net from "node:net"
import { captureLogs } from "../../../test/support/logs.js"
import * as PgPool from "../src/PgPool.js"

const runs = Number(process.env.PG_SECRETS_RUNS ?? 1_000)
const seed = process.env.PG_SECRETS_SEED === undefined ? undefined : Number(process.env.PG_SECRETS_SEED)
const path = process.env.PG_SECRETS_PATH

const greek = "αβγδεζηθικλμνξοπρστυφχψω"
/** A Greek letter, or its percent-encoding (UTF-8 lead bytes CE and CF). */
const leak = new RegExp(`[${greek}]|%C[EF]%`, "i")

const letters = FastCheck.constantFrom(..."abcdefghijklmnopqrstuvwxyz0123456789")
const word = FastCheck.stringOf(letters, { minLength: 1, maxLength: 8 })
const greekChar = FastCheck.constantFrom(...greek)
const special = FastCheck.constantFrom(..."/@:?#%&=+,;[]~!$*()'\\ \"<>|^`{}")

/** A password with at least one Greek letter; `bare` leaves out what a bare key=value value cannot hold. */
const password = (bare: boolean) =>
  FastCheck.tuple(
    greekChar,
    FastCheck.array(
      FastCheck.oneof(
        { arbitrary: greekChar, weight: 3 },
        { arbitrary: letters, weight: 2 },
        { arbitrary: bare ? FastCheck.constantFrom(..."/@:?#%&=+,;[]~!$*()") : special, weight: 2 }
      ),
      { maxLength: 16 }
    ),
    FastCheck.nat({ max: 16 })
  ).map(([first, rest, at]) => {
    const chars = [...rest]
    chars.splice(Math.min(at, chars.length), 0, first)
    return chars.join("")
  })

/** Mostly well formed, so that many cases get past the parser to the connect path. */
const wellOrNot = <A>(good: FastCheck.Arbitrary<A>, bad: FastCheck.Arbitrary<A>) =>
  FastCheck.oneof({ arbitrary: good, weight: 6 }, { arbitrary: bad, weight: 1 })

const scheme = wellOrNot(
  FastCheck.constantFrom("postgres://", "postgresql://", "POSTGRES://"),
  FastCheck.constantFrom("postgres:/", "postgres//", "postgres:", "postgres:///", "mysql://", "")
)
const host = wellOrNot(
  FastCheck.constantFrom("127.0.0.1", "localhost", "[::1]", "%2Ftmp", ""),
  FastCheck.constantFrom("db.invalid", "[::1", "a b")
)
const port = wellOrNot(
  FastCheck.constantFrom("", ":5432", ":1"),
  FastCheck.constantFrom(":notaport", ":70000", ":", ":0")
)
const database = FastCheck.oneof(FastCheck.constant(""), word.map((w) => `/${w}`))
const param = wellOrNot(
  FastCheck.constantFrom(
    "sslmode=disable",
    "application_name=app",
    "options=-c%20search_path%3Dapp",
    "connect_timeout=5",
    "keepalives=1",
    "fallback_application_name=x"
  ),
  FastCheck.oneof(
    FastCheck.constantFrom(
      "sslmode=sometimes",
      "options=-x",
      "connect_timeout=0",
      "keepalives_count=3",
      "host=/tmp",
      "sslrootcert=/nonexistent/root.crt",
      "hostaddr=10.0.0.1",
      "schema=public",
      "noequals"
    ),
    FastCheck.tuple(word, word).map(([k, v]) => `${k}=${v}`)
  )
)
const params = FastCheck.array(param, { maxLength: 2 })

/** How a password is written where it goes. */
const encodings = {
  uri: FastCheck.constantFrom<(p: string) => string>((p) => p, encodeURIComponent),
  keyword: FastCheck.constantFrom<(p: string) => string>(
    (p) => `'${p.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`,
    (p) => `'${p.replace(/'/g, "")}`, // an unterminated quote
    (p) => p.replace(/\\/g, "\\\\")
  )
}

interface Case {
  readonly password: string
  readonly options: PgPool.Options
}

const join = (list: ReadonlyArray<string>) => (list.length === 0 ? "" : `?${list.join("&")}`)

const inUserInfo: FastCheck.Arbitrary<Case> = FastCheck.record({
  scheme,
  user: word,
  pw: password(false),
  encode: encodings.uri,
  at: FastCheck.constantFrom("@", "@@"),
  host,
  port,
  database,
  params
}).map(({ at, database, encode, host, params, port, pw, scheme, user }) => ({
  password: pw,
  options: { url: `${scheme}${user}:${encode(pw)}${at}${host}${port}${database}${join(params)}` }
}))

const inQuery: FastCheck.Arbitrary<Case> = FastCheck.record({
  scheme,
  pw: password(false),
  host,
  port,
  database,
  before: params,
  after: params
}).map(({ after, before, database, host, port, pw, scheme }) => ({
  password: pw,
  options: {
    url: `${scheme}${host}${port}${database}${join([...before, `password=${encodeURIComponent(pw)}`, ...after])}`
  }
}))

const keyword = wellOrNot(
  FastCheck.constantFrom(
    "host=127.0.0.1",
    "port=5432",
    "dbname=app",
    "user=app",
    "sslmode=disable",
    "application_name='a b'",
    "host='/tmp'"
  ),
  FastCheck.constantFrom("sslmode=bogus", "port=x", "connect_timeout=0", "nokey", "x=y")
)

const inKeywords: FastCheck.Arbitrary<Case> = FastCheck.record({
  pw: password(true),
  encode: encodings.keyword,
  before: FastCheck.array(keyword, { maxLength: 3 }),
  after: FastCheck.array(keyword, { maxLength: 3 })
}).map(({ after, before, encode, pw }) => ({
  password: pw,
  // an unterminated quote swallows the rest: put it last
  options: {
    url: [
      ...before,
      ...(encode(pw).startsWith("'") && !encode(pw).endsWith("'") ? [] : after),
      `password=${encode(pw)}`
    ].join(" ")
  }
}))

const asOption: FastCheck.Arbitrary<Case> = FastCheck.record({
  scheme,
  pw: password(false),
  redacted: FastCheck.boolean(),
  other: FastCheck.option(word, { nil: undefined }),
  host,
  port,
  database,
  params
}).map(({ database, host, other, params, port, pw, redacted, scheme }) => ({
  password: pw,
  options: {
    url: `${scheme}${other === undefined ? "" : `u:${other}@`}${host}${port}${database}${join(params)}`,
    password: redacted ? Redacted.make(pw) : pw
  }
}))

/** The URL as a `Redacted` (as `PgClientConfig` types it) or, a quarter of the time, a plain string. */
const cases = FastCheck.tuple(
  FastCheck.oneof(inUserInfo, inQuery, inKeywords, asOption),
  FastCheck.oneof({ arbitrary: FastCheck.constant(true), weight: 3 }, {
    arbitrary: FastCheck.constant(false),
    weight: 1
  })
).map(([c, redact]): Case =>
  redact && typeof c.options.url === "string"
    ? { ...c, options: { ...c.options, url: Redacted.make(c.options.url) } }
    : c
)

/** A socket whose connect is refused at once: the connect path runs to its error without a network. */
const refusing = () => {
  const socket = new Net.Socket()
  socket.connect = (() => {
    process.nextTick(() =>
      socket.destroy(Object.assign(new Error("connect ECONNREFUSED (refused by the test)"), { code: "ECONNREFUSED" }))
    )
    return socket
  }) as unknown as typeof socket.connect
  return socket
}

const texts = (cause: Cause.Cause<unknown>, lines: ReadonlyArray<string>): ReadonlyArray<string> => [
  Cause.pretty(cause),
  ...[...Cause.failures(cause), ...Cause.defects(cause)].flatMap((e) => {
    const error = e as { readonly message?: unknown; readonly cause?: unknown }
    return [
      String(error.message),
      String(e),
      String(JSON.stringify(e)),
      String(error.cause),
      String(JSON.stringify(error.cause))
    ]
  }),
  ...lines
]

describe("D10 property: no piece of a password in any error or log", () => {
  it.live.prop(
    `D10 ${runs} random connection strings with a password in every place one can be written`,
    [cases],
    ([c]) =>
      Effect.gen(function*() {
        const logs = captureLogs()
        const exit = yield* PgPool.make({
          ...c.options,
          applicationName: "secrets-prop",
          connectTimeout: "1 second",
          acquireTimeout: "1 second",
          stream: refusing
        }).pipe(
          // if it built, a statement shows how the string was read
          Effect.flatMap((pg) => pg.sql`SELECT 1`),
          Effect.scoped,
          Effect.provide(Reactivity.layer),
          logs.provide,
          Effect.exit
        )
        const url = c.options.url
        const written = JSON.stringify(Redacted.isRedacted(url) ? Redacted.value(url) : url)
        assert.isTrue(Exit.isFailure(exit), `nothing listens, yet ${written} worked`)
        const shown = texts(
          (exit as Exit.Failure<unknown, unknown>).cause,
          logs.lines.map((l) => `${l.message} ${JSON.stringify(l.annotations)}`)
        )
        for (const text of shown) {
          assert.notMatch(
            text,
            leak,
            `a piece of the password ${JSON.stringify(c.password)} of ${written} shows in: ${text}`
          )
        }
      }),
    {
      timeout: Math.max(30_000, runs * 20),
      fastCheck: { numRuns: runs, ...(seed !== undefined ? { seed } : {}), ...(path !== undefined ? { path } : {}) }
    }
  )
})
