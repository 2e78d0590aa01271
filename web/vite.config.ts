import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { defineConfig, type Plugin } from "vite";
import react from "@vitejs/plugin-react";

// `npm run dev` proxies the API (and its websocket) to a running `python server.py`.
const target = process.env.SDGRAPH_SERVER ?? "http://127.0.0.1:8188";

/** Writes a `.gz` beside each text asset; the server's FileResponse sends it to clients
 * that accept gzip, so the bundle travels compressed with no work per request. */
function gzipAssets(): Plugin {
  let outDir = "dist";
  return {
    name: "sdgraph-gzip-assets",
    apply: "build",
    configResolved(c) {
      outDir = c.build.outDir;
    },
    closeBundle() {
      const walk = (dir: string) => {
        for (const e of readdirSync(dir, { withFileTypes: true })) {
          const p = join(dir, e.name);
          if (e.isDirectory()) walk(p);
          else if (/\.(js|css|html|svg|json)$/.test(e.name)) {
            writeFileSync(`${p}.gz`, gzipSync(readFileSync(p), { level: 9 }));
          }
        }
      };
      walk(outDir);
    },
  };
}

export default defineConfig({
  plugins: [react(), gzipAssets()],
  base: "/",
  build: { outDir: "dist", emptyOutDir: true, chunkSizeWarningLimit: 800 },
  server: { proxy: { "/api": { target, ws: true, changeOrigin: false } } },
});
