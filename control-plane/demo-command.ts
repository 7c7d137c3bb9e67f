// `trellis demo` (`npm start`): the options of the demo mesh. The demo itself lives in examples/demo/ and
// is not part of the product: the action loads it from a path resolved at run time (it is compiled into
// dist/ beside the product, and run from source under tsx), so nothing in the product imports examples/.
import { Option, type Command } from 'commander';
import { onShutdownSignal, parseDuration, parsePort } from './cli-options.js';

/** What `trellis demo` was given; examples/demo/command.ts runs it. */
export interface DemoCommandOptions {
  readonly staticResources: string;
  readonly xdsPort: number;
  readonly monitoringPort: number;
  readonly echoV1Port: number;
  readonly echoV2Port: number;
  readonly duration: number;
  readonly logLevel: string;
}

/** What the demo's command module exports. */
export interface DemoCommandModule {
  /** Runs the demo until it ends; returns its `stop()` for the shutdown signal handler. */
  runDemoCommand(options: DemoCommandOptions, onStarted: (stop: () => Promise<void>) => void): Promise<void>;
}

/** The demo's command module, relative to this file in the source tree and in dist/ alike. */
const DEMO_MODULE = ['..', 'examples', 'demo', 'command.js'].join('/');

async function loadDemo(): Promise<DemoCommandModule> {
  const loaded = (await import(new URL(DEMO_MODULE, import.meta.url).href)) as Partial<DemoCommandModule>;
  if (typeof loaded.runDemoCommand !== 'function') throw new Error(`${DEMO_MODULE} does not export runDemoCommand`);
  return loaded as DemoCommandModule;
}

/** Adds `trellis demo` to the program. */
export function registerDemoCommand(program: Command): void {
  program
    .command('demo')
    .description(
      'run a demo mesh on this machine: control plane, two echo servers and a proxyless gRPC client (npm start)',
    )
    .option('--static-resources <file>', 'the config the demo serves', 'examples/demo/static-resources.yaml')
    .addOption(new Option('--xds-port <port>', 'xDS port').default(15010).argParser(parsePort))
    .addOption(new Option('--monitoring-port <port>', 'monitoring port').default(15014).argParser(parsePort))
    .addOption(
      new Option('--echo-v1-port <port>', 'echo v1 port (must match the YAML)').default(50051).argParser(parsePort),
    )
    .addOption(
      new Option('--echo-v2-port <port>', 'echo v2 port (must match the YAML)').default(50052).argParser(parsePort),
    )
    .addOption(
      new Option('--duration <duration>', 'stop after this long (0: until Ctrl-C)').default(0).argParser(parseDuration),
    )
    .addOption(
      new Option('--log-level <level>', 'control-plane log level')
        .choices(['debug', 'info', 'warn', 'error'])
        .default('warn'),
    )
    .action(async (opts: DemoCommandOptions) => {
      const demo = await loadDemo();
      await demo.runDemoCommand(opts, (stop) => onShutdownSignal(stop));
    });
}
