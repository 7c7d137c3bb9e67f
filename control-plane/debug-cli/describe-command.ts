// `trellis describe pod|service NAME.NS`: the command line only; the client and the text load when it runs.
import { Argument, type Command } from 'commander';
import { addDebugOptions, runDebugCommand, type DebugCliOptions } from './command-options.js';

/** Adds `trellis describe` to the program. */
export function registerDescribeCommand(program: Command): void {
  addDebugOptions(
    program
      .command('describe')
      .description(
        'what applies to a pod or a service: its VirtualService, DestinationRule (subsets and their endpoints), PeerAuthentication and mTLS mode, and what its proxies ACKed',
      )
      .addArgument(new Argument('<kind>', 'what to describe').choices(['pod', 'service']))
      .argument('<name>', 'NAME.NAMESPACE (a name without a namespace is in default)'),
  ).action(async (kind: 'pod' | 'service', name: string, opts: DebugCliOptions) => {
    await runDebugCommand('describe', async () => {
      const { runDescribe } = await import('./describe.js');
      await runDescribe({
        controlPlane: opts.controlPlane,
        kind,
        target: name,
        output: opts.output,
        stdout: process.stdout,
      });
    });
  });
}
