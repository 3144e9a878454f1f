#!/usr/bin/env node
import { runCli } from './program.js';

const status = await runCli(process.argv.slice(2));
// Let stdout drain before leaving: piped output must not be cut.
process.exitCode = status;
