#!/usr/bin/env node
// Code blocks of the docs, as files a compiler can check.
//
//   node scripts/snippets.mjs jsdoc
//     Extracts every ```ts block of the JSDoc of the public modules (packages/*/src/*.ts, not
//     internal/) into .snippets/jsdoc/ and type-checks them on the workspace's sources with the
//     same strict options as the code (tsc). Exits non-zero on a broken example.
//
//   node scripts/snippets.mjs readme <README.md> <outDir>
//     Writes every ```ts block of the README to <outDir>/readme-<n>.ts and a manifest
//     <outDir>/snippets.json ([{ file, line, run }]). A block whose info string says `run`
//     (```ts run) is a complete program that CI also runs; a block with `file=<path>` must be
//     byte-for-byte that file of the repository (it is run where that file lives) and is
//     checked here instead of written out.
import { execFileSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"

const root = Path.resolve(Path.dirname(fileURLToPath(import.meta.url)), "..")

/** The fenced blocks of a markdown text: info string, body, 1-based line of the fence. */
const fencedBlocks = (text) => {
  const blocks = []
  const lines = text.split("\n")
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)```(\S*)(.*)$/.exec(lines[i])
    if (open === null) continue
    const indent = open[1].length
    const body = []
    let j = i + 1
    while (j < lines.length && !/^\s*```\s*$/.test(lines[j])) body.push(lines[j++].slice(indent))
    blocks.push({ lang: open[2], info: open[3].trim(), body: body.join("\n") + "\n", line: i + 1 })
    i = j
  }
  return blocks
}

const jsdoc = () => {
  const out = Path.join(root, "test", ".snippets")
  Fs.rmSync(out, { recursive: true, force: true })
  Fs.mkdirSync(out, { recursive: true })
  const files = []
  for (const pkg of Fs.readdirSync(Path.join(root, "packages"))) {
    const src = Path.join(root, "packages", pkg, "src")
    if (!Fs.existsSync(src)) continue
    for (const name of Fs.readdirSync(src).filter((n) => n.endsWith(".ts"))) {
      const text = Fs.readFileSync(Path.join(src, name), "utf8")
      let n = 0
      for (const comment of text.matchAll(/\/\*\*([\s\S]*?)\*\//g)) {
        const startLine = text.slice(0, comment.index).split("\n").length
        const markdown = comment[1].split("\n").map((l) => l.replace(/^\s*\* ?/, "")).join("\n")
        for (const block of fencedBlocks(markdown)) {
          if (block.lang !== "ts" && block.lang !== "typescript") continue
          const file = `${pkg}-${name.replace(/\.ts$/, "")}-${++n}.ts`
          const origin = `packages/${pkg}/src/${name}:${startLine + block.line - 1}`
          Fs.writeFileSync(Path.join(out, file), `// ${origin}\nexport {}\n${block.body}`)
          files.push({ file, origin })
        }
      }
    }
  }
  Fs.writeFileSync(
    Path.join(out, "tsconfig.json"),
    JSON.stringify(
      {
        extends: "../../tsconfig.base.json",
        compilerOptions: { noEmit: true, noUnusedLocals: false, types: ["node"] },
        include: ["*.ts"]
      },
      null,
      2
    )
  )
  process.stdout.write(`type-checking ${files.length} JSDoc example(s)\n`)
  try {
    execFileSync(Path.join(root, "node_modules", ".bin", "tsc"), ["-p", Path.join(out, "tsconfig.json")], {
      stdio: "inherit"
    })
  } catch {
    process.stderr.write("a JSDoc example does not type-check (each file names the line it came from)\n")
    process.exit(1)
  }
  Fs.rmSync(out, { recursive: true, force: true })
  process.stdout.write(`${files.length} JSDoc example(s) type-check\n`)
}

const readme = (readmePath, outDir) => {
  const text = Fs.readFileSync(readmePath, "utf8")
  Fs.mkdirSync(outDir, { recursive: true })
  const manifest = []
  let failed = false
  let n = 0
  for (const block of fencedBlocks(text)) {
    if (block.lang !== "ts" && block.lang !== "typescript") continue
    const words = block.info.split(/\s+/).filter((w) => w !== "")
    const same = words.find((w) => w.startsWith("file="))
    if (same !== undefined) {
      const path = Path.join(root, same.slice("file=".length))
      const actual = Fs.existsSync(path) ? Fs.readFileSync(path, "utf8") : undefined
      if (actual !== block.body) {
        process.stderr.write(
          `${Path.basename(readmePath)}:${block.line}: the block must be exactly ${same.slice(5)} (copy it over)\n`
        )
        failed = true
      }
      continue
    }
    const file = `readme-${++n}.ts`
    Fs.writeFileSync(Path.join(outDir, file), block.body)
    manifest.push({ file, line: block.line, run: words.includes("run") })
  }
  Fs.writeFileSync(Path.join(outDir, "snippets.json"), JSON.stringify(manifest, null, 2))
  process.stdout.write(
    `${manifest.length} README block(s) written to ${outDir}, ${manifest.filter((m) => m.run).length} to run\n`
  )
  if (failed) process.exit(1)
}

const [command, ...args] = process.argv.slice(2)
if (command === "jsdoc") jsdoc()
else if (command === "readme" && args.length === 2) readme(Path.resolve(args[0]), Path.resolve(args[1]))
else {
  process.stderr.write("usage: snippets.mjs jsdoc | snippets.mjs readme <README.md> <outDir>\n")
  process.exit(2)
}
