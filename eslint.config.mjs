import effectPlugin from "@effect/eslint-plugin"
import js from "@eslint/js"
import tseslint from "typescript-eslint"

// Effect v3's lint and format settings, trimmed: dprint through @effect/eslint-plugin.
export default tseslint.config(
  { ignores: ["**/node_modules/**", "**/dist/**", "**/build/**", "**/docs/**", "**/.snippets/**", "bench/results/**"] },
  js.configs.recommended,
  ...tseslint.configs.strict,
  ...effectPlugin.configs.dprint,
  {
    languageOptions: {
      parser: tseslint.parser,
      ecmaVersion: 2022,
      sourceType: "module"
    },
    rules: {
      "no-fallthrough": "off",
      "no-irregular-whitespace": "off",
      "object-shorthand": "error",
      "prefer-destructuring": "off",
      "no-unused-vars": "off",
      "prefer-rest-params": "off",
      "prefer-spread": "off",
      "@typescript-eslint/array-type": ["warn", { default: "generic", readonly: "generic" }],
      "@typescript-eslint/consistent-type-imports": "warn",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "@typescript-eslint/no-explicit-any": "off",
      "@typescript-eslint/no-non-null-assertion": "off",
      "@typescript-eslint/no-namespace": "off",
      "@typescript-eslint/no-empty-object-type": "off",
      "@typescript-eslint/no-invalid-void-type": "off",
      "@typescript-eslint/no-dynamic-delete": "off",
      "@typescript-eslint/unified-signatures": "off",
      "@effect/dprint": [
        "error",
        {
          config: {
            indentWidth: 2,
            lineWidth: 120,
            semiColons: "asi",
            quoteStyle: "alwaysDouble",
            trailingCommas: "never",
            operatorPosition: "maintain",
            "arrowFunction.useParentheses": "force"
          }
        }
      ]
    }
  },
  {
    files: ["packages/*/src/**/*.ts"],
    rules: {
      "no-console": "error",
      "@effect/no-import-from-barrel-package": ["error", { packageNames: ["effect", "@effect/sql"] }]
    }
  },
  {
    // No fire-and-forget (issue 11 item 5): background work runs on fibers the pool supervises.
    files: ["packages/pg/src/**/*.ts"],
    rules: {
      "no-restricted-properties": [
        "error",
        ...["runFork", "runPromise", "runPromiseExit", "runCallback", "runSync", "runSyncExit"].map((property) => ({
          object: "Effect",
          property,
          message: "no Effect.run* in src: run background work on a supervised fiber (FiberSet) or inline"
        }))
      ]
    }
  },
  {
    // The protocol layer is plain TypeScript: buffers, callbacks, a state machine.
    files: ["packages/pg/src/internal/wire/**/*.ts"],
    rules: {
      "no-restricted-imports": ["error", {
        patterns: [{ group: ["effect", "effect/*", "@effect/*"], message: "the wire layer imports no effect" }]
      }]
    }
  },
  {
    files: ["packages/core/src/**/*.ts"],
    rules: {
      "no-restricted-imports": ["error", { patterns: ["pg", "pg-*", "@effect/sql*", "@scoped-pool/pg"] }]
    }
  },
  {
    files: ["packages/*/test/**/*.ts", "test/**/*.ts"],
    rules: { "no-console": "error" }
  }
)
