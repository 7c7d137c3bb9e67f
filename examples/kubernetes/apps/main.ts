#!/usr/bin/env node
// The example apps' one entry point: `node main.js <frontend|reviews|ratings|details|call> [options]`.
// Every option also comes from an environment variable (the flag wins), so the same image and code run
// in Kubernetes (env from the Deployment and the downward API), as local processes (`npm start`) and in
// tests. With OTEL_EXPORTER_OTLP_ENDPOINT set, tracing starts before any gRPC module loads (tracing.ts).
import { Command, Option } from 'commander';
import os from 'node:os';
import type { MethodDefinition } from '@grpc/grpc-js';
import type { Tracing } from './tracing.js';

type AppName = 'frontend' | 'reviews' | 'ratings' | 'details';

function int(name: string, min: number, max: number): (raw: string) => number {
  return (raw) => {
    const value = Number(raw);
    if (!Number.isInteger(value) || value < min || value > max) {
      throw new Error(`${name}: must be an integer from ${min} to ${max}, not "${raw}"`);
    }
    return value;
  };
}

const common = {
  host: () =>
    new Option('--host <ip>', 'address the gRPC server binds: with xDS the IP the mesh knows (the pod IP)').env(
      'POD_IP',
    ),
  port: (fallback: number) =>
    new Option('--port <port>', 'gRPC port')
      .env('PORT')
      .default(fallback)
      .argParser(int('--port', 0, 65535)),
  pod: () => new Option('--pod <name>', 'this instance, in replies and logs').env('POD_NAME').default(os.hostname()),
  version: () =>
    new Option('--version <v>', 'this instance version, in replies (v1, v2, v3)').env('VERSION').default('v1'),
};

interface RunOptions {
  host?: string;
  port: number;
  pod: string;
  version: string;
}

/** Tracing is on when an OTLP endpoint is configured (the SDK is not even loaded otherwise). */
function tracingEnabled(env: NodeJS.ProcessEnv = process.env): boolean {
  return Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
}

async function tracingFor(app: string, o: { pod: string; version?: string }): Promise<Tracing | undefined> {
  if (!tracingEnabled()) return undefined;
  const { startTracing } = await import('./tracing.js');
  return startTracing(app, { 'service.version': o.version ?? 'v1', 'k8s.pod.name': o.pod });
}

/** Loads the mesh module (and so @grpc/grpc-js) only after tracing is set up. */
async function prepare(app: AppName, o: RunOptions) {
  const tracing = await tracingFor(app, o);
  const { meshMode, prepareMesh } = await import('./mesh.js');
  const { createLogger } = await import('../../../control-plane/logger.js');
  const mode = meshMode();
  await prepareMesh(mode);
  const logger = createLogger({ name: app }).child({ pod: o.pod, version: o.version });
  const host = o.host ?? (mode === 'xds' ? '127.0.0.1' : '0.0.0.0');
  logger.info({ mode, tracing: tracing !== undefined }, `${app} starting`);
  return { tracing, mode, logger, host };
}

function untilSignal(close: () => Promise<void>, tracing: Tracing | undefined): void {
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    void close()
      .then(() => tracing?.shutdown())
      .finally(() => process.exit(0));
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

const program = new Command('trellis-example')
  .description('the example application of examples/kubernetes (frontend → reviews v1/v2/v3 → ratings)')
  .showHelpAfterError();

program
  .command('ratings')
  .description('the ratings gRPC server')
  .addOption(common.host())
  .addOption(common.port(9080))
  .addOption(common.pod())
  .addOption(common.version())
  .addOption(
    new Option('--fail-every <n>', 'fail every n-th call with UNAVAILABLE (0: never)')
      .env('RATINGS_FAIL_EVERY')
      .default(0)
      .argParser(int('--fail-every', 0, 1_000_000)),
  )
  .addOption(
    new Option('--delay-ms <ms>', 'answer after this many milliseconds')
      .env('RATINGS_DELAY_MS')
      .default(0)
      .argParser(int('--delay-ms', 0, 600_000)),
  )
  .action(async (o: RunOptions & { failEvery: number; delayMs: number }) => {
    const { tracing, mode, logger, host } = await prepare('ratings', o);
    const { startRatings } = await import('./ratings.js');
    const server = await startRatings({ ...o, mode, host, logger });
    untilSignal(() => server.close(), tracing);
  });

program
  .command('reviews')
  .description('the reviews gRPC server (calls ratings)')
  .addOption(common.host())
  .addOption(common.port(9080))
  .addOption(common.pod())
  .addOption(common.version())
  .addOption(new Option('--ratings <target>', 'ratings as name:port').env('RATINGS_TARGET').default('ratings:9080'))
  .action(async (o: RunOptions & { ratings: string }) => {
    const { tracing, mode, logger, host } = await prepare('reviews', o);
    const { startReviews } = await import('./reviews.js');
    const server = await startReviews({ ...o, mode, host, logger });
    untilSignal(() => server.close(), tracing);
  });

program
  .command('details')
  .description('the details gRPC server (the Envoy-template workload)')
  .addOption(common.host())
  .addOption(common.port(9080))
  .addOption(common.pod())
  .addOption(common.version())
  .action(async (o: RunOptions) => {
    const { tracing, mode, logger, host } = await prepare('details', o);
    const { startDetails } = await import('./details.js');
    const server = await startDetails({ ...o, mode, host, logger });
    untilSignal(() => server.close(), tracing);
  });

program
  .command('frontend')
  .description('the frontend: a reviews client with an HTTP admin port (GET /call?n=…)')
  .addOption(common.pod())
  .addOption(new Option('--reviews <target>', 'reviews as name:port').env('REVIEWS_TARGET').default('reviews:9080'))
  .addOption(new Option('--details <target>', 'details as name:port').env('DETAILS_TARGET').default('details:9080'))
  .addOption(new Option('--admin-host <ip>', 'HTTP admin address').env('ADMIN_HOST').default('0.0.0.0'))
  .addOption(
    new Option('--admin-port <port>', 'HTTP admin port')
      .env('ADMIN_PORT')
      .default(8080)
      .argParser(int('--admin-port', 0, 65535)),
  )
  .action(async (o: { pod: string; reviews: string; details: string; adminHost: string; adminPort: number }) => {
    const { tracing, mode, logger } = await prepare('frontend', { ...o, port: 0, version: 'v1' });
    const { startFrontend } = await import('./frontend.js');
    const frontend = await startFrontend({ ...o, mode, logger });
    untilSignal(() => frontend.close(), tracing);
  });

program
  .command('call')
  .description('one call, printed as JSON; exit 0 when it succeeds, 1 when it fails (e.g. a pod without a sidecar)')
  .requiredOption('--target <target>', 'name:port, ip:port or a target URI')
  .addOption(
    new Option('--service <name>', 'which service').choices(['reviews', 'ratings', 'details']).default('reviews'),
  )
  .addOption(new Option('--deadline-ms <ms>', 'deadline').default(5_000).argParser(int('--deadline-ms', 1, 600_000)))
  .action(async (o: { target: string; service: 'reviews' | 'ratings' | 'details'; deadlineMs: number }) => {
    const grpc = await import('@grpc/grpc-js');
    const api = await import('./api.js');
    const { channelCredentials, meshMode, prepareMesh, targetFor, unary } = await import('./mesh.js');
    const mode = meshMode();
    await prepareMesh(mode);
    const target = targetFor(o.target, mode);
    const deadline = Date.now() + o.deadlineMs;
    const methods = {
      reviews: api.reviewsService.GetReviews,
      ratings: api.ratingsService.GetRating,
      details: api.detailsService.GetDetails,
    } as const;
    const method = methods[o.service] as MethodDefinition<{ product: string }, unknown>;
    const Client = grpc.makeGenericClientConstructor({}, o.service);
    const client = new Client(target, channelCredentials(mode));
    const r = await unary(client, method, { product: 'the-book' }, { deadline });
    client.close();
    process.stdout.write(
      `${JSON.stringify({ target, mode, ...(r.ok ? r : { ok: false, code: grpc.status[r.code], details: r.details }) })}\n`,
    );
    process.exitCode = r.ok ? 0 : 1;
  });

await program.parseAsync(process.argv);
