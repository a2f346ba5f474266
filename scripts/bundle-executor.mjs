#!/usr/bin/env node
// Bundles the executor (src/executors/executor.ts and everything it imports) into one ESM file,
// dist/executor.bundle.mjs, which the SSH transport uploads to agents keyed by its content hash.
import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

// dockerode's modem requires ssh2 for ssh:// engines, which the executor never uses (it talks to
// the local engine's socket). ssh2 needs native parts that cannot travel in one file, so the
// bundle gets an empty stand-in: without it the docker driver would not load on SSH agents.
const stubSsh2 = {
  name: 'stub-ssh2',
  setup(b) {
    b.onResolve({ filter: /^ssh2$/ }, () => ({ path: 'ssh2', namespace: 'factory-stub' }));
    b.onLoad({ filter: /.*/, namespace: 'factory-stub' }, () => ({
      contents: "module.exports = { Client: function Client() { throw new Error('ssh:// docker engines are not supported by the factory executor'); } };",
      loader: 'js',
    }));
  },
};
await build({
  entryPoints: [path.join(root, 'src/executors/executor.ts')],
  outfile: path.join(root, 'dist/executor.bundle.mjs'),
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  // native addons cannot travel in one file; drivers load them lazily and report when missing
  external: ['@unraid/libvirt', 'cpu-features'],
  plugins: [stubSsh2],
  banner: { js: "import { createRequire as __factoryCreateRequire } from 'node:module'; const require = __factoryCreateRequire(import.meta.url);" },
  legalComments: 'none',
  logLevel: 'warning',
});
