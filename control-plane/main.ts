#!/usr/bin/env node
// The `trellis` executable.
import { buildProgram } from './cli.js';

await buildProgram().parseAsync(process.argv);
