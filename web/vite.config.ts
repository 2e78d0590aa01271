import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

// `npm run dev` proxies the API (and its websocket) to a running `python server.py`.
const target = process.env.SDGRAPH_SERVER ?? "http://127.0.0.1:8188";

export default defineConfig({
  plugins: [react()],
  base: "/",
  build: { outDir: "dist", emptyOutDir: true, chunkSizeWarningLimit: 800 },
  server: { proxy: { "/api": { target, ws: true, changeOrigin: false } } },
});
