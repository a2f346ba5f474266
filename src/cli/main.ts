/**
 * The CLI's entry (bin/run.cjs imports the built bundle of this file): oclif finds the package root
 * above this file, reads oclif.manifest.json and loads the one command asked for.
 */
import { execute } from '@oclif/core';
import { helpArgv } from './help-argv.js';

await execute({ dir: import.meta.url, args: helpArgv(process.argv.slice(2)) });
