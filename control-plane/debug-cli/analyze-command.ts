// `trellis analyze`: the command line only; the Kubernetes client, the model and the injector load when it runs.
import { Option, type Command, type CommanderError } from 'commander';
import { runDebugCommand } from './command-options.js';

interface AnalyzeCliOptions {
  controlPlane?: string;
  kubeconfig?: string;
  context?: string;
  namespace: string[];
  imageTag?: string;
  imageRegistry?: string;
  output: 'table' | 'json' | 'yaml';
  failureThreshold: 'error' | 'warning' | 'info';
}

/** Adds `trellis analyze` to the program. */
export function registerAnalyzeCommand(program: Command): void {
  program
    .command('analyze')
    .description(
      'find what is wrong with the mesh in the cluster: pods in labelled namespaces without a sidecar (created before the label, or skipped), sidecars older than the injector template, routing objects that match nothing, subsets without endpoints; each with the command that fixes it',
    )
    .option('--kubeconfig <file>', 'kubeconfig (default: $KUBECONFIG or ~/.kube/config, or in-cluster)')
    .option(
      '--control-plane <url>',
      "analyse the control plane's own model instead of the API server (its monitoring port; local mode too)",
    )
    .option('--context <name>', 'kubeconfig context')
    .option(
      '-n, --namespace <name>',
      'only findings in this namespace (repeatable)',
      (value: string, previous: string[]) => [...previous, value],
      [] as string[],
    )
    .option('--image-tag <tag>', 'tag of the sidecar images the injector uses (default: this version)')
    .option('--image-registry <prefix>', 'registry prefix of the sidecar images the injector uses')
    .addOption(new Option('-o, --output <format>', 'output format').choices(['table', 'json', 'yaml']).default('table'))
    .addOption(
      new Option(
        '--failure-threshold <severity>',
        'exit with status 79 when a finding is at least this severe (as istioctl analyze does)',
      )
        .choices(['error', 'warning', 'info'])
        .default('error'),
    )
    .exitOverride((err: CommanderError) => {
      process.exit(err.exitCode === 0 ? 0 : 2);
    })
    .action(async (opts: AnalyzeCliOptions) => {
      await runDebugCommand('analyze', async () => {
        const { runAnalyze, failsThreshold, FOUND_ISSUES_EXIT_CODE } = await import('./analyze.js');
        const result = await runAnalyze({
          ...(opts.controlPlane ? { controlPlane: opts.controlPlane } : {}),
          ...(opts.kubeconfig ? { kubeconfig: opts.kubeconfig } : {}),
          ...(opts.context ? { context: opts.context } : {}),
          namespaces: opts.namespace,
          image: {
            ...(opts.imageTag !== undefined ? { tag: opts.imageTag } : {}),
            ...(opts.imageRegistry !== undefined ? { registry: opts.imageRegistry } : {}),
          },
          output: opts.output,
          stdout: process.stdout,
        });
        if (failsThreshold(result, opts.failureThreshold)) process.exitCode = FOUND_ISSUES_EXIT_CODE;
      });
    });
}
