#!/usr/bin/env node
// factory's Node entry (bin/factory starts it). When a control host (`factory control serve`)
// serves this command's state directory, the command runs there: dist/cli/thin-client.cjs loads
// nothing but Node's own modules. Otherwise the bundled CLI (dist/cli/main.js) runs oclif, which
// loads the one command asked for. --debug turns source maps on, so stack traces point at src/.
'use strict';
const { forward, restoreDeferredEnv } = require('../dist/cli/thin-client.cjs');

restoreDeferredEnv(process.env);
if (process.argv.includes('--debug')) process.setSourceMapsEnabled(true);
forward(process.argv.slice(2))
  .then((code) => {
    if (code === undefined) return import('../dist/cli/main.js');
    process.exitCode = code;
    return undefined;
  })
  .catch((err) => {
    process.stderr.write(`factory: ${err && err.message ? err.message : String(err)}\n`);
    process.exitCode = 1;
  });
