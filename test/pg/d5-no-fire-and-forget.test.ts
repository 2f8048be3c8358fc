/**
 * D5 (issue 11 item 5, the connection part): no `Effect.runFork` / `runPromise` / `runCallback`
 * / `runSync` on the default runtime anywhere in `packages/pg/src` — cancels, background
 * closes and listener errors run on supervised fibers or inline in the closing fiber — and the
 * wire layer imports no `effect` at all. The lint rules say the same (`pnpm lint`); this test
 * keeps it true even where lint is not run.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"

const src = Path.resolve(Path.dirname(fileURLToPath(import.meta.url)), "..", "..", "packages", "pg", "src")

const filesUnder = (dir: string): Array<string> =>
  Fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory()
      ? filesUnder(Path.join(dir, entry.name))
      : entry.name.endsWith(".ts")
      ? [Path.join(dir, entry.name)]
      : []
  )

// Code only: block and line comments (JSDoc examples included) are cut out first.
const codeOf = (file: string): string =>
  Fs.readFileSync(file, "utf8").replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "")

describe("D5 no fire-and-forget in packages/pg/src", () => {
  it("no Effect.run* call", () => {
    const offenders = filesUnder(src).flatMap((file) =>
      [...codeOf(file).matchAll(/\b(?:Effect|Runtime)\.run(?:Fork|Promise|PromiseExit|Callback|Sync|SyncExit)\b/g)]
        .map((match) => `${Path.relative(src, file)}: ${match[0]}`)
    )
    assert.deepStrictEqual(offenders, [])
  })

  it("the wire layer imports no effect", () => {
    const wire = Path.join(src, "internal", "wire")
    assert.isTrue(Fs.existsSync(wire), "packages/pg/src/internal/wire exists")
    const offenders = filesUnder(wire).filter((file) => /from\s+"(?:effect|@effect\/)/.test(codeOf(file)))
    assert.deepStrictEqual(offenders.map((file) => Path.relative(src, file)), [])
  })
})
