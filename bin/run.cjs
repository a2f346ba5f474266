#!/usr/bin/env node
// factory's Node entry (bin/factory starts it). dist/cli/thin-client.cjs (Node's own modules only)
// puts back the environment bin/factory deferred; then the bundled CLI (dist/cli/main.js) runs
// oclif, which loads the one command asked for. A command that a control host serves reaches it
// through the host's HTTP API (src/cli/base.ts hostTarget()). --debug turns source maps on, so
// stack traces point at src/.
'use strict';
const { restoreDeferredEnv } = require('../dist/cli/thin-client.cjs');

restoreDeferredEnv(process.env);
if (process.argv.includes('--debug')) process.setSourceMapsEnabled(true);
import('../dist/cli/main.js').catch((err) => {
  process.stderr.write(`factory: ${err && err.message ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
