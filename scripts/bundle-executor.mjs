#!/usr/bin/env node
// Bundles the executor (src/executors/executor.ts and everything it imports) into one ESM file,
// dist/executor.bundle.mjs, which the SSH transport uploads to agents keyed by its content hash.
import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
await build({
  entryPoints: [path.join(root, 'src/executors/executor.ts')],
  outfile: path.join(root, 'dist/executor.bundle.mjs'),
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  // native addons cannot travel in one file; drivers load them lazily and report when missing
  external: ['@unraid/libvirt', 'cpu-features', 'ssh2'],
  banner: { js: "import { createRequire as __factoryCreateRequire } from 'node:module'; const require = __factoryCreateRequire(import.meta.url);" },
  legalComments: 'none',
  logLevel: 'warning',
});
