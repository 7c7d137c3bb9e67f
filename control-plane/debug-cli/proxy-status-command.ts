// `trellis proxy-status`: the command line only; the client and the table load when it runs.
import type { Command } from 'commander';
import { addDebugOptions, runDebugCommand, type DebugCliOptions } from './command-options.js';

/** Adds `trellis proxy-status` to the program. */
export function registerProxyStatusCommand(program: Command): void {
  addDebugOptions(
    program
      .command('proxy-status')
      .description(
        'per connected proxy and type (CDS, LDS, EDS, RDS, SDS): SYNCED, STALE (sent, not ACKed), NACKED (with the error) or NOT SENT, the version, and the time since the last change',
      ),
  ).action(async (opts: DebugCliOptions) => {
    await runDebugCommand('proxy-status', async () => {
      const { runProxyStatus } = await import('./proxy-status.js');
      await runProxyStatus({ controlPlane: opts.controlPlane, output: opts.output, stdout: process.stdout });
    });
  });
}
