import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { brotliCompressSync, constants, gzipSync } from "node:zlib";
import { defineConfig, type Plugin } from "vite";

const root = fileURLToPath(new URL(".", import.meta.url));

/** Writes `.br` and `.gz` beside each built asset, so the server sends them compressed without work per request. */
function precompress(): Plugin {
  return {
    name: "kikitori-precompress",
    apply: "build",
    closeBundle() {
      const dir = join(root, "dist", "assets");
      for (const f of readdirSync(dir)) {
        if (!/\.(js|css|svg|json)$/.test(f)) continue;
        const data = readFileSync(join(dir, f));
        writeFileSync(
          join(dir, `${f}.br`),
          brotliCompressSync(data, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }),
        );
        writeFileSync(join(dir, `${f}.gz`), gzipSync(data, { level: 9 }));
      }
    },
  };
}

/** The dashboard: Preact pages built into web/dist, served by `kikitori serve` under /ui/ (index at /). */
export default defineConfig({
  root,
  base: "/ui/",
  esbuild: { jsx: "automatic", jsxImportSource: "preact" },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "es2022",
    modulePreload: { polyfill: false },
    reportCompressedSize: false,
  },
  plugins: [precompress()],
});
