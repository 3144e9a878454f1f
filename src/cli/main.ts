#!/usr/bin/env node
import { installTerminationHandlers, terminationStatus } from './termination.js';
import { runCli } from './program.js';

// SIGINT, SIGTERM, SIGHUP and a closed stdout stop the command's VMs before the process exits.
installTerminationHandlers();
const status = await runCli(process.argv.slice(2));
// Let stdout drain before leaving: piped output must not be cut. (When ending on a signal, the
// handler exits once the VMs have stopped.)
if (terminationStatus() === undefined) process.exitCode = status;
