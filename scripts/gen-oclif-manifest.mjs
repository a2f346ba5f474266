#!/usr/bin/env node
// Writes oclif.manifest.json after a build. Without it oclif imports every command module (ink,
// dockerode, ssh2 …) on every run just to list their flags; with it, a run loads one command.
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Config } from '@oclif/core';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const file = path.join(root, 'oclif.manifest.json');
rmSync(file, { force: true }); // never read a stale manifest while listing the commands anew
const config = await Config.load({ root });
const manifest = config.rootPlugin?.manifest ?? [...config.plugins.values()][0]?.manifest;
if (!manifest || Object.keys(manifest.commands).length === 0) {
  console.error('gen-oclif-manifest: no commands found (was dist/ built?)');
  process.exit(1);
}
writeFileSync(file, JSON.stringify(manifest));
