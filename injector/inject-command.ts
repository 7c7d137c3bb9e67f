// `trellis inject`: the command line only; the injector is imported when the command runs.
import { InvalidArgumentError, Option, type Command, type CommanderError } from 'commander';

interface InjectCliOptions {
  filename: string;
  template: 'envoy' | 'grpc';
  meshConfig?: string;
  controlPlane?: string;
  imageTag?: string;
  imageRegistry?: string;
  kubernetesVersion?: number;
}

function minorOf(text: string): number {
  const match = /^v?1\.([0-9]+)(\.[0-9]+)?$/.exec(text.trim());
  if (!match) throw new InvalidArgumentError(`"${text}" is not a Kubernetes version such as 1.34`);
  return Number(match[1]);
}

/** Adds `trellis inject` to the program. */
export function registerInjectCommand(program: Command): void {
  program
    .command('inject')
    .description(
      'add the Trellis sidecar to the Pods and pod templates (Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob) of multi-document YAML; writes the result to stdout',
    )
    .requiredOption('-f, --filename <file>', 'a YAML file, or - for stdin')
    .addOption(
      new Option('--template <name>', 'template of pods that name none (trellis.dev/template)')
        .choices(['envoy', 'grpc'])
        .default('envoy'),
    )
    .option('--mesh-config <file>', 'mesh settings (trustDomain, mtlsMode) as for trellis control-plane')
    .option(
      '--control-plane <address>',
      'xDS and CA address the agents dial (default trellisd.trellis-system.svc:15012)',
    )
    .option('--image-tag <tag>', 'tag of the sidecar images (default: this version)')
    .option('--image-registry <prefix>', 'registry prefix of the sidecar images ("" for none)')
    .addOption(
      new Option(
        '--kubernetes-version <1.N>',
        'target API server version (native sidecars from 1.29; default 1.29)',
      ).argParser(minorOf),
    )
    .exitOverride((err: CommanderError) => {
      process.exit(err.exitCode === 0 ? 0 : 2);
    })
    .action(async (opts: InjectCliOptions) => {
      let meshConfig;
      if (opts.meshConfig !== undefined) {
        const { MeshConfigError, readMeshConfigFile } = await import('../control-plane/translate/mesh-config.js');
        try {
          meshConfig = readMeshConfigFile(opts.meshConfig);
        } catch (err) {
          if (!(err instanceof MeshConfigError)) throw err;
          process.stderr.write(`error: --mesh-config is invalid:\n  ${err.errors.join('\n  ')}\n`);
          process.exitCode = 2;
          return;
        }
      }
      const { runInject } = await import('./inject-run.js');
      process.exitCode = await runInject(
        opts.filename,
        {
          meshConfig,
          defaultTemplate: opts.template,
          controlPlane: opts.controlPlane,
          image: {
            ...(opts.imageTag !== undefined ? { tag: opts.imageTag } : {}),
            ...(opts.imageRegistry !== undefined ? { registry: opts.imageRegistry } : {}),
          },
          kubernetesMinor: opts.kubernetesVersion,
        },
        { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr },
      );
    });
}
