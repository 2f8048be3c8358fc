/**
 * A ready-made vitest global setup: `globalSetup: ["@scoped-pool/testing/globalSetup"]` in
 * `vitest.config.ts` starts one embedded PostgreSQL for the run (or uses `TEST_DATABASE_URL`)
 * without a seeded template. To seed one, write your own file with `PgTestSetup.make`.
 *
 * @since 0.2.0
 */
import * as PgTestSetup from "./PgTestSetup.js"

/**
 * @since 0.2.0
 * @category setup
 */
export default PgTestSetup.make()
