// `trellis validate`: the command line only. The validator (schemas, RE2, cross-checks) is imported when the
// command runs, so building the program and `trellis --help` load none of it.
import { InvalidArgumentError, type Command, type CommanderError } from 'commander';

function noEmptyPath(value: string, previous: string[] | undefined): string[] {
  if (value === '') throw new InvalidArgumentError('empty path');
  return [...(previous ?? []), value];
}

/** Adds `trellis validate` to the program. */
export function registerValidateCommand(program: Command): void {
  program
    .command('validate')
    .description(
      'validate VirtualService, DestinationRule, PeerAuthentication, AuthorizationPolicy and ServiceEntry files, against each other and the Services in the same input',
    )
    .requiredOption(
      '-f, --filename <paths...>',
      'files, directories (searched recursively for .yaml, .yml and .json) or - for stdin',
      noEmptyPath,
    )
    .exitOverride((err: CommanderError) => {
      // Usage errors exit 2 (commander has printed the message); help and version exit 0.
      process.exit(err.exitCode === 0 ? 0 : 2);
    })
    .action(async (opts: { filename: string[] }) => {
      const { runValidate } = await import('./validate-command.js');
      process.exitCode = await runValidate(opts.filename, {
        stdin: process.stdin,
        stdout: process.stdout,
        stderr: process.stderr,
      });
    });
}
