// `trellis install`: the command line only. The manifest modules (the CRD schemas among them) are imported
// when the command runs, so building the program loads none of them.
import type { Command, CommanderError } from 'commander';
import { parsePositiveInt } from '../control-plane/cli-options.js';
import type { InstallCommandOptions } from './install-command.js';

/** Adds `trellis install` to the program. */
export function registerInstallCommand(program: Command): void {
  program
    .command('install')
    .description(
      'print the manifest that installs Trellis into namespace trellis-system (pipe it to `kubectl apply --server-side -f -`); with no options it is deploy/install.yaml',
    )
    .option('--image-tag <tag>', 'tag of the control-plane image (default: this version)')
    .option('--registry <prefix>', 'registry prefix of the image, e.g. localhost:5000 ("" for none)')
    .option('--replicas <n>', 'control-plane replicas (default 2)', parsePositiveInt)
    .option(
      '--mesh-config <file>',
      'mesh-wide settings (the format of `trellis control-plane --mesh-config`), checked and put into ConfigMap trellis-mesh-config',
    )
    .exitOverride((err: CommanderError) => {
      process.exit(err.exitCode === 0 ? 0 : 2);
    })
    .action(async (opts: InstallCommandOptions) => {
      const { runInstall } = await import('./install-command.js');
      process.exitCode = runInstall(opts, { stdout: process.stdout, stderr: process.stderr });
    });
}
