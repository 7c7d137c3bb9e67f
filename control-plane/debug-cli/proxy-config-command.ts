// `trellis proxy-config KIND PROXY`: the command line only; the client and the summaries load when it runs.
import { Argument, type Command } from 'commander';
import { addDebugOptions, runDebugCommand, type DebugCliOptions } from './command-options.js';

const KINDS = ['clusters', 'listeners', 'routes', 'endpoints', 'secrets'] as const;

/** Adds `trellis proxy-config` to the program. */
export function registerProxyConfigCommand(program: Command): void {
  addDebugOptions(
    program
      .command('proxy-config')
      .description(
        'what one proxy was sent, summarised (clusters, listeners, routes, endpoints, or secrets: SPIFFE ID, serial, expiry, never a key); -o json|yaml prints the resources',
      )
      .addArgument(new Argument('<kind>', 'what to show').choices(KINDS))
      .argument('<proxy>', 'the node id of the proxy (see trellis proxy-status)'),
  ).action(async (kind: (typeof KINDS)[number], proxy: string, opts: DebugCliOptions) => {
    await runDebugCommand('proxy-config', async () => {
      const { runProxyConfig } = await import('./proxy-config.js');
      await runProxyConfig({
        controlPlane: opts.controlPlane,
        kind,
        proxy,
        output: opts.output,
        stdout: process.stdout,
      });
    });
  });
}
