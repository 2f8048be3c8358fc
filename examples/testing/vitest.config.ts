import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    // One embedded PostgreSQL for the run, with the schema migrated once into a template.
    globalSetup: ["./test/globalSetup.ts"],
    hookTimeout: 60_000
  }
})
