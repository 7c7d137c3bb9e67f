// `trellis diff -f CHANGE.yaml`: the command line only; the client and the table load when it runs.
import type { Command } from 'commander';
import { addDebugOptions, runDebugCommand, type DebugCliOptions } from './command-options.js';

/** Adds `trellis diff` to the program. */
export function registerDiffCommand(program: Command): void {
  addDebugOptions(
    program
      .command('diff')
      .description(
        'what applying VirtualServices, DestinationRules or PeerAuthentications would change, per connected proxy and resource (added, removed, changed fields), computed by the control plane against its live model; nothing is applied',
      )
      .requiredOption('-f, --filename <file>', 'the change: a YAML file, or - for stdin'),
  ).action(async (opts: DebugCliOptions & { filename: string }) => {
    await runDebugCommand('diff', async () => {
      const { runDiff } = await import('./diff.js');
      await runDiff({
        controlPlane: opts.controlPlane,
        file: opts.filename,
        output: opts.output,
        stdin: process.stdin,
        stdout: process.stdout,
      });
    });
  });
}
