// The options every debug command shares (`--control-plane URL`, `-o table|json|yaml`) and how a failed
// run ends. Commander only: loaded while the program is built, before any command runs.
import { Option, type Command, type CommanderError } from 'commander';

export interface DebugCliOptions {
  controlPlane: string;
  output: 'table' | 'json' | 'yaml';
}

/** Adds `--control-plane` and `-o/--output`; usage errors exit 2. */
export function addDebugOptions(command: Command): Command {
  return command
    .addOption(
      new Option(
        '--control-plane <url>',
        "the control plane's monitoring port (e.g. through kubectl port-forward)",
      ).default('http://127.0.0.1:15014'),
    )
    .addOption(new Option('-o, --output <format>', 'output format').choices(['table', 'json', 'yaml']).default('table'))
    .exitOverride((err: CommanderError) => {
      process.exit(err.exitCode === 0 ? 0 : 2);
    });
}

/** Runs a command's implementation; an error is printed on stderr as one line and the exit code is 1. */
export async function runDebugCommand(name: string, run: () => Promise<void>): Promise<void> {
  try {
    await run();
  } catch (err) {
    process.stderr.write(`trellis ${name}: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  }
}
