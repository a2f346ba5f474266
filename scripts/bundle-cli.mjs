#!/usr/bin/env node
// Bundles the CLI: oclif, our code, yaml, zod and the small libraries become a few ESM files
// (dist/cli/main.js, one file per command under dist/commands/, shared code in dist/chunks/) in
// place of hundreds of modules that Node would resolve, read and compile one by one (245 CommonJS
// files alone for `plan apply`). Measured side by side when it came in: factory --version 108.8 →
// 93.3 ms, median of 11.
//
// Left in node_modules: ink and react (the dashboard loads them when it starts) and the libraries
// loaded only on the paths that need them — dockerode (image push), ssh2 (SSH agents),
// @unraid/libvirt (VM images), etcd3 and cockatiel (an etcd:// state; etcd3 reads its .proto files
// from its own folder). The dashboard's state worker is its own entry (dist/tui/state-worker.js,
// found from dist/chunks/ as ../tui/state-worker.js), since a worker thread loads it by file.
import { build } from 'esbuild';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const src = path.join(root, 'src');
const dist = path.join(root, 'dist');

/** UNBUNDLED are the commands that stay tsc's output (none at present). */
const UNBUNDLED = new Set([]);

function commandFiles(dir) {
  const out = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...commandFiles(p));
    else if (/\.tsx?$/.test(e.name) && !e.name.endsWith('.d.ts') && !UNBUNDLED.has(path.relative(path.join(src, 'commands'), p))) out.push(p);
  }
  return out;
}

const entryPoints = [path.join(src, 'cli', 'main.ts'), path.join(src, 'tui', 'state-worker.ts'), ...commandFiles(path.join(src, 'commands'))];
const result = await build({
  entryPoints,
  outdir: dist,
  outbase: src,
  entryNames: '[dir]/[name]',
  chunkNames: 'chunks/[name]-[hash]',
  bundle: true,
  splitting: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  minify: true,
  // error class names stay readable (`--debug` prints SpecError, not a one-letter name), and the
  // maps let `--debug` show stack traces in the sources (bin/run.cjs turns source maps on for it)
  keepNames: true,
  sourcemap: 'linked',
  // loaded lazily on the paths that need them; native parts cannot be bundled. oclif reaches for
  // typescript / ts-node / tsx only when it runs .ts sources (development), never from dist/.
  external: ['dockerode', 'ssh2', '@unraid/libvirt', 'cpu-features', 'etcd3', 'cockatiel', 'ink', 'react', 'typescript', 'ts-node', 'tsx'],
  // CommonJS dependencies (oclif, yaml, proper-lockfile) call require() for Node's own modules
  banner: { js: "import { createRequire as __factoryCreateRequire } from 'node:module'; const require = __factoryCreateRequire(import.meta.url);" },
  legalComments: 'none',
  logLevel: 'warning',
  metafile: true,
});

for (const f of fs.readdirSync(path.join(dist, 'chunks'))) {
  if (!result.metafile.outputs[`dist/chunks/${f}`] && !result.metafile.outputs[`dist/chunks/${f.replace(/\.map$/, '')}`]) fs.rmSync(path.join(dist, 'chunks', f), { force: true });
}
// the thin client every run loads first (bin/run.cjs), and the fast path it loads for `status` and
// `plan apply` on a local host's socket: CommonJS, Node's own modules only (checked below)
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
for (const name of ['thin-client', 'fast-path']) {
  const r = await build({
    entryPoints: [path.join(src, 'cli', `${name}.ts`)],
    outfile: path.join(dist, 'cli', `${name}.cjs`),
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    define: { __FACTORY_VERSION__: JSON.stringify(pkg.version) },
    logLevel: 'warning',
    metafile: true,
  });
  const inputs = Object.keys(r.metafile.inputs);
  const foreign = inputs.filter((f) => !f.startsWith('src/'));
  if (foreign.length) throw new Error(`dist/cli/${name}.cjs must bundle nothing but src/ and Node's own modules, not ${foreign.join(', ')}`);
  const imports = Object.values(r.metafile.outputs).flatMap((o) => o.imports.map((i) => i.path));
  const notNode = imports.filter((i) => !i.startsWith('node:') && !['fs', 'os', 'path', 'net', 'http', 'tls', 'crypto'].includes(i));
  if (notNode.length) throw new Error(`dist/cli/${name}.cjs requires ${notNode.join(', ')}: Node's own modules only`);
}

const code = Object.entries(result.metafile.outputs).filter(([f]) => !f.endsWith('.map'));
const bytes = code.reduce((a, [, o]) => a + o.bytes, 0);
console.log(`bundle-cli: ${entryPoints.length} entries, ${code.length} files, ${(bytes / 1024).toFixed(0)} KB`);
