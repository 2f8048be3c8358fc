import { PgTestSetup } from "@scoped-pool/testing"
import * as Users from "../src/Users.js"

// One server for the whole run (or TEST_DATABASE_URL's); the migration runs once, into the
// template that every test file's database is copied from.
export default PgTestSetup.make({ seed: Users.migrate })
