// `npm start` / `trellis demo`: a whole mesh on one machine, with no cluster. A control plane serves
// examples/demo/static-resources.yaml; two echo servers (v1 and v2) stand behind
// echo.demo.svc.cluster.local:8080; a proxyless gRPC client (grpc-js + @grpc/grpc-js-xds) calls it
// continuously and prints, every second, how its calls were split. Edit the YAML while it runs and watch
// the split follow.
import { register } from '@grpc/grpc-js-xds';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startControlPlane } from '../../control-plane/control-plane.js';
import type { Logger } from '../../control-plane/logger.js';
import { EchoClient, startEchoServer, xdsBootstrap, xdsChannelOptions } from './echo.js';

/** The folder that holds package.json (works from the sources and from dist/). */
export function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!fs.existsSync(path.join(dir, 'package.json'))) {
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error('package.json not found above the demo');
    dir = parent;
  }
  return dir;
}

export interface DemoOptions {
  readonly logger: Logger;
  readonly staticResources: string;
  readonly xdsPort: number;
  readonly monitoringPort: number;
  readonly echoPorts: readonly [number, number];
  /** Stop after this long (0: run until stopped). */
  readonly durationMs: number;
  /** One line per interval; defaults to stdout. */
  readonly print?: (line: string) => void;
  /** Pause between calls. */
  readonly callIntervalMs?: number;
}

export interface RunningDemo {
  /** Calls answered so far, by server name. */
  readonly tally: ReadonlyMap<string, number>;
  readonly done: Promise<void>;
  stop(): Promise<void>;
}

export async function runDemo(options: DemoOptions): Promise<RunningDemo> {
  register();
  const print = options.print ?? ((line: string) => process.stdout.write(line + '\n'));
  const servers = await Promise.all([
    startEchoServer('echo-v1', '127.0.0.1', options.echoPorts[0]),
    startEchoServer('echo-v2', '127.0.0.1', options.echoPorts[1]),
  ]);
  const cp = await startControlPlane({
    logger: options.logger,
    staticResources: options.staticResources,
    xdsPort: options.xdsPort,
    monitoringPort: options.monitoringPort,
  });
  print(
    `control plane: xDS on 127.0.0.1:${cp.xdsPort}, metrics and debug on http://127.0.0.1:${cp.monitoringPort}/ (try /debug/proxies)`,
  );
  print(`echo v1 on 127.0.0.1:${servers[0].port}, echo v2 on 127.0.0.1:${servers[1].port}`);
  print(`config: ${options.staticResources} (edit the weights; the split below follows)`);
  const client = new EchoClient(
    'xds:///echo.demo.svc.cluster.local:8080',
    undefined,
    xdsChannelOptions(xdsBootstrap(`127.0.0.1:${cp.xdsPort}`, 'demo-client.demo', { NAMESPACE: 'demo' })),
  );

  const tally = new Map<string, number>();
  let window = new Map<string, number>();
  let errors = 0;
  let running = true;
  const calls = (async () => {
    while (running) {
      try {
        const reply = await client.echo('hello', 2_000);
        tally.set(reply.server, (tally.get(reply.server) ?? 0) + 1);
        window.set(reply.server, (window.get(reply.server) ?? 0) + 1);
      } catch (err) {
        errors++;
        if (errors === 1 || errors % 20 === 0) print(`call failed: ${(err as Error).message}`);
      }
      await new Promise((r) => setTimeout(r, options.callIntervalMs ?? 10));
    }
  })();
  const report = setInterval(() => {
    const total = [...window.values()].reduce((a, b) => a + b, 0);
    const parts = [...window.entries()].sort().map(([name, n]) => `${name} ${((100 * n) / total).toFixed(0)}%`);
    print(total === 0 ? 'no calls answered in the last second' : `${total} calls: ${parts.join(', ')}`);
    window = new Map();
  }, 1_000);

  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopped ??= (async () => {
      running = false;
      clearInterval(report);
      await calls;
      client.close();
      await cp.close();
      await Promise.all(servers.map((s) => s.close()));
    })());
  const done =
    options.durationMs > 0
      ? new Promise<void>((r) => setTimeout(r, options.durationMs)).then(stop)
      : new Promise<void>(() => undefined);
  return { tally, done, stop };
}
