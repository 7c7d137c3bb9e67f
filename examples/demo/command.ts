// `trellis demo`: runs the demo mesh with the options the product's CLI parsed
// (control-plane/demo-command.ts, which loads this module at run time), then prints the split.
import path from 'node:path';
import type { DemoCommandModule, DemoCommandOptions } from '../../control-plane/demo-command.js';
import { createLogger } from '../../control-plane/logger.js';
import { packageRoot, runDemo } from './run.js';

export const runDemoCommand: DemoCommandModule['runDemoCommand'] = async (
  opts: DemoCommandOptions,
  onStarted: (stop: () => Promise<void>) => void,
): Promise<void> => {
  const file = path.isAbsolute(opts.staticResources)
    ? opts.staticResources
    : path.resolve(packageRoot(), opts.staticResources);
  const demo = await runDemo({
    logger: createLogger({ level: opts.logLevel, name: 'trellis-demo', destination: process.stderr }),
    staticResources: file,
    xdsPort: opts.xdsPort,
    monitoringPort: opts.monitoringPort,
    echoPorts: [opts.echoV1Port, opts.echoV2Port],
    durationMs: opts.duration,
  });
  onStarted(() => demo.stop());
  await demo.done;
  const total = [...demo.tally.values()].reduce((a, b) => a + b, 0);
  console.log(
    `demo finished: ${total} calls (${[...demo.tally.entries()]
      .sort()
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')})`,
  );
};
