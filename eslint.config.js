import js from "@eslint/js";
import tseslint from "typescript-eslint";
import { createNodeResolver, importX } from "eslint-plugin-import-x";

/**
 * Backends (SQLite, PostgreSQL, the filesystem and S3 object stores) are chosen in one place: the factory
 * `src/backends.ts`, used by the wiring (`src/main.ts`). Everything else sees the store contracts only.
 */
const BACKEND_IMPORTS = [
  {
    group: ["**/queue/sqlite/*", "**/queue/postgres/*", "**/storage/fs.js", "**/storage/s3.js"],
    message:
      "Only src/backends.ts chooses a backend; import the contract (queue/types, storage/index) instead.",
  },
];

export default tseslint.config(
  { ignores: ["**/dist/", "node_modules/", "bench/results/", ".cache/", "coverage/"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
    },
  },
  {
    files: ["**/*.js", "**/*.mjs", "**/*.cjs"],
    languageOptions: {
      globals: { process: "readonly", console: "readonly", setTimeout: "readonly", Buffer: "readonly" },
    },
  },
  {
    // Type-aware rules for the product: a promise nobody awaits hides its failure.
    files: ["src/**/*.ts"],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    plugins: { "import-x": importX },
    settings: {
      "import-x/extensions": [".ts", ".js"],
      "import-x/parsers": { "@typescript-eslint/parser": [".ts"] },
      // Sources import `./x.js` and the file is `./x.ts` (NodeNext).
      "import-x/resolver-next": [createNodeResolver({ extensionAlias: { ".js": [".ts", ".js"] } })],
    },
    rules: {
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/no-misused-promises": ["error", { checksVoidReturn: false }],
      "import-x/no-cycle": ["error", { ignoreExternal: true }],
      "no-restricted-imports": ["error", { patterns: BACKEND_IMPORTS }],
    },
  },
  {
    // The backends themselves, and the one factory that picks among them.
    files: ["src/queue/sqlite/**", "src/queue/postgres/**", "src/storage/**", "src/backends.ts"],
    rules: { "no-restricted-imports": "off" },
  },
  {
    // Tests read JSON bodies field by field; typing every response shape would add noise, not safety.
    files: ["test/**/*.ts"],
    rules: { "@typescript-eslint/no-explicit-any": "off" },
  },
);
