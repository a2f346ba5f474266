#!/usr/bin/env node
// factory's entry point: oclif finds the commands under dist/commands.
import { execute } from '@oclif/core';

await execute({ dir: import.meta.url });
