#!/usr/bin/env node
// factory's entry point: the bundled CLI (dist/cli/main.js) runs oclif, which loads one command.
// --debug prints stack traces; the source maps make them point at src/ instead of the bundle.
if (process.argv.includes('--debug')) process.setSourceMapsEnabled(true);
await import('../dist/cli/main.js');
