// Every module our emitted .d.ts files import must be one the user has: a dependency or peer
// dependency of the package (a devDependency is not installed for them), itself, or a Node
// builtin (`node:*`, typed by the optional peer @types/node).
import * as Fs from "node:fs"
import * as Path from "node:path"

let failed = false
for (const dir of process.argv.slice(2)) {
  const manifest = JSON.parse(Fs.readFileSync(Path.join(dir, "package.json"), "utf8"))
  const allowed = new Set([
    manifest.name,
    ...Object.keys(manifest.dependencies ?? {}),
    ...Object.keys(manifest.peerDependencies ?? {})
  ])
  const files = Fs.readdirSync(Path.join(dir, "build", "dts"), { recursive: true }).filter((f) => f.endsWith(".d.ts"))
  for (const file of files) {
    const text = Fs.readFileSync(Path.join(dir, "build", "dts", file), "utf8").replace(/\/\*[\s\S]*?\*\//g, "")
    for (const match of text.matchAll(/(?:from |import\(|declare module |import )"([^"]+)"/g)) {
      const specifier = match[1]
      if (specifier.startsWith(".")) continue
      if (specifier.startsWith("node:")) {
        if (!allowed.has("@types/node")) {
          console.error(`${manifest.name}: ${file} imports ${specifier} but @types/node is not a (peer) dependency`)
          failed = true
        }
        continue
      }
      const parts = specifier.split("/")
      const name = specifier.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0]
      if (!allowed.has(name)) {
        console.error(`${manifest.name}: ${file} imports "${specifier}", which is not a dependency or peer dependency`)
        failed = true
      }
    }
  }
  console.log(`${manifest.name}: ${files.length} .d.ts files, every import resolves for a user`)
}
process.exit(failed ? 1 : 0)
