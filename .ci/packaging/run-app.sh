#!/usr/bin/env bash
# Runs the packaging test's application programs with node (DATABASE_URL is set by with-pg.ts).
set -euo pipefail
cd "$1"
echo "\$ node main.mjs"
timeout 60 node main.mjs
echo "\$ node dist/main.js"
timeout 60 node dist/main.js
for file in $(node -e 'for (const s of require("./src/snippets.json")) if (s.run) console.log(s.file.replace(/\.ts$/, ".js") + ":" + s.line)'); do
  echo "\$ node dist/src/${file%%:*}    # README.md line ${file##*:}"
  timeout 60 node "dist/src/${file%%:*}"
done
