import { defineConfig } from "vitest/config"

// One real PostgreSQL for the run (test/support/globalSetup.ts); at most two test files run
// at once on this 2-core machine.
export default defineConfig({
  test: {
    include: ["packages/*/test/**/*.test.ts", "test/**/*.test.ts"],
    // Fixture projects are run by their own tests in a child vitest.
    exclude: ["**/node_modules/**", "**/fixtures/**"],
    globalSetup: ["test/support/globalSetup.ts"],
    setupFiles: ["vitest.setup.ts"],
    pool: "forks",
    poolOptions: { forks: { minForks: 1, maxForks: 2 } },
    testTimeout: 30_000,
    hookTimeout: 60_000,
    teardownTimeout: 20_000,
    // In CI: name any handle left open, and write a JSON report for .ci/run's closing line.
    reporters: process.env.CI
      ? ["default", "hanging-process", ["json", { outputFile: "test-results.json" }]]
      : ["default"]
  }
})
