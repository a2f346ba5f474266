#!/usr/bin/env node
// Bundles the executor (src/executors/executor.ts and everything it imports) into one ESM file,
// dist/executor.bundle.mjs, which the SSH transport uploads to agents keyed by its content hash.
//
// The docker driver (dockerode and its dependencies, most of the weight) goes to a second file,
// dist/executor-docker-<hash>.mjs, which the main bundle imports (relative to itself) only when a
// docker engine answers: agents without docker never upload, read or compile it. Its name is baked
// into the main bundle, so the main bundle's own hash covers both files. dist/executor.bundle.json
// names the docker file for the SSH transport.
import { build } from 'esbuild';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = path.join(root, 'dist');

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

// dockerode's BuildKit session (gRPC + protobufjs, ~1 MB of the 1.5 MB it would add) serves only
// `docker build` with BuildKit, which the executor never does. It gets a stand-in that fails loudly
// if ever called, so the docker driver file every docker agent compiles stays small.
const stubBuildkit = {
  name: 'stub-dockerode-buildkit',
  setup(b) {
    b.onResolve({ filter: /^\.\/(session|buildkit)$/ }, (args) =>
      /[\\/]dockerode[\\/]lib$/.test(args.resolveDir) ? { path: `dockerode-${args.path.slice(2)}`, namespace: 'factory-stub-buildkit' } : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: 'factory-stub-buildkit' }, () => ({
      contents: "module.exports = function buildkitUnsupported() { throw new Error('BuildKit builds are not supported by the factory executor'); };",
      loader: 'js',
    }));
  },
};

const common = {
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  // less to upload, read and compile on every agent start
  minify: true,
  // native addons cannot travel in one file; drivers load them lazily and report when missing
  external: ['@unraid/libvirt', 'cpu-features'],
  banner: { js: "import { createRequire as __factoryCreateRequire } from 'node:module'; const require = __factoryCreateRequire(import.meta.url);" },
  legalComments: 'none',
  logLevel: 'warning',
  write: false,
};

const hash16 = (buf) => createHash('sha256').update(buf).digest('hex').slice(0, 16);

// 1. the docker driver on its own
const docker = await build({
  ...common,
  entryPoints: [path.join(root, 'src/executors/drivers/docker.ts')],
  outfile: path.join(dist, 'executor-docker.mjs'),
  plugins: [stubSsh2, stubBuildkit],
});
const dockerContent = Buffer.from(docker.outputFiles[0].contents);
const dockerName = `executor-docker-${hash16(dockerContent)}.mjs`;
if (/@grpc|protobufjs/.test(dockerContent.toString('latin1'))) throw new Error('bundle-executor: dockerode\'s BuildKit session (gRPC) was bundled; the stub-dockerode-buildkit plugin no longer matches');

// 2. the executor, with its lazy import of the docker driver (the driver registry's docker entry,
//    src/executors/drivers/registry.ts) pointing at the file above
const dockerExternal = {
  name: 'docker-driver-external',
  setup(b) {
    b.onResolve({ filter: /^\.\/docker\.js$/ }, (args) =>
      args.kind === 'dynamic-import' && /[\\/]executors[\\/]drivers$/.test(args.resolveDir) ? { path: `./${dockerName}`, external: true } : undefined,
    );
    // docker-engine.ts's connectDocker (used by the docker driver only) is tree-shaken away
    b.onResolve({ filter: /^dockerode$/ }, () => ({ path: 'dockerode', external: true }));
  },
};
const main = await build({
  ...common,
  entryPoints: [path.join(root, 'src/executors/executor.ts')],
  outfile: path.join(dist, 'executor.bundle.mjs'),
  plugins: [dockerExternal],
});
const mainContent = Buffer.from(main.outputFiles[0].contents);
if (mainContent.includes('dockerode') || !mainContent.includes(dockerName)) {
  throw new Error(`bundle-executor: the docker driver did not split off the executor bundle (looked for ${dockerName})`);
}

fs.mkdirSync(dist, { recursive: true });
for (const f of fs.readdirSync(dist)) if (/^executor-docker-[0-9a-f]{16}\.mjs$/.test(f) && f !== dockerName) fs.rmSync(path.join(dist, f), { force: true });
fs.writeFileSync(path.join(dist, dockerName), dockerContent);
fs.writeFileSync(path.join(dist, 'executor.bundle.mjs'), mainContent, { mode: 0o755 });
fs.writeFileSync(path.join(dist, 'executor.bundle.json'), `${JSON.stringify({ main: 'executor.bundle.mjs', docker: dockerName }, null, 2)}\n`);
