#!/usr/bin/env node
// The agent's own entry point (`trellis-agent`, and `trellis agent`, which control-plane/main.ts sends here
// before it loads anything else): commander and the agent's modules only, none of the control plane's.
// `trellis-agent [agent] --flags…`: the word `agent` is optional.
import { Command } from 'commander';
import { registerAgentCommand } from './cli.js';

const args = process.argv.slice(2);
const program = new Command('trellis').showHelpAfterError();
registerAgentCommand(program);
await program.parseAsync(['agent', ...(args[0] === 'agent' ? args.slice(1) : args)], { from: 'user' });
