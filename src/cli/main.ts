/**
 * The CLI's entry (bin/run.cjs imports the built bundle of this file): oclif finds the package root
 * above this file, reads oclif.manifest.json and loads the one command asked for.
 */
import { execute } from '@oclif/core';

await execute({ dir: import.meta.url });
