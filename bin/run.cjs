#!/usr/bin/env node
// factory's Node entry (bin/factory starts it). dist/cli/thin-client.cjs (Node's own modules only)
// puts back the environment bin/factory deferred. `status` and `plan apply FILE…` on a local
// control host's socket, with flags it understands, run on the fast path (dist/cli/fast-path.cjs:
// the host's HTTP API, Node's own modules only, no oclif); when it cannot reach the host (nothing
// sent) or for any other command, the bundled CLI (dist/cli/main.js) runs oclif, which loads the
// one command asked for. FACTORY_THIN=off always takes the full CLI. --debug turns source maps on,
// so stack traces point at src/.
'use strict';
const { restoreDeferredEnv, fastPathRequest } = require('../dist/cli/thin-client.cjs');

restoreDeferredEnv(process.env);

function fullCli() {
  if (process.argv.includes('--debug')) process.setSourceMapsEnabled(true);
  import('../dist/cli/main.js').catch((err) => {
    process.stderr.write(`factory: ${err && err.message ? err.message : String(err)}\n`);
    process.exitCode = 1;
  });
}

const fast = fastPathRequest(process.argv.slice(2), process.env);
if (!fast) fullCli();
else {
  require('../dist/cli/fast-path.cjs')
    .runFast(fast)
    .then(
      (handled) => {
        if (!handled) fullCli();
      },
      (err) => {
        process.stderr.write(`factory: internal error: ${err && err.message ? err.message : String(err)}\nhint: run again with --debug for details\n`);
        process.exitCode = 1;
      },
    );
}
