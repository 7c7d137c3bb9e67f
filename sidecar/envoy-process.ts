// Envoy under the agent (Envoy template): `trellis agent --envoy-binary PATH` starts Envoy on the bootstrap it
// wrote, once the workload certificate is installed and the xDS proxy is up, and keeps it running, as
// Istio's pilot-agent does for istio-proxy.
//
// - Envoy's output goes to the agent's (the container log), unchanged.
// - When Envoy cannot be started (no such binary) or exits, the agent stays up (SDS and the xDS proxy keep
//   serving), reports not ready with the reason on /healthz/ready, and starts it again after the one
//   backoff (lib/backoff.ts: 1 s doubling to 30 s); a run that lasted a minute resets the backoff.
// - On close, Envoy gets SIGTERM and, after `stopGraceMs`, SIGKILL.
import { spawn, type ChildProcess } from 'node:child_process';
import { Backoff } from '../lib/backoff.js';
import { systemClock, type Clock, type ClockTimer } from '../lib/clock.js';
import type { Logger } from '../control-plane/logger.js';

export interface EnvoyProcessOptions {
  /** The Envoy executable (`/usr/local/bin/envoy` in the trellis/proxy image). */
  readonly binary: string;
  /** The bootstrap the agent wrote. */
  readonly bootstrap: string;
  /** Extra arguments after Envoy's own (`--concurrency 2`, `--log-level warn`, …). */
  readonly extraArgs?: readonly string[];
  readonly logger: Logger;
  readonly clock?: Clock;
  /** How long Envoy may take to exit after SIGTERM; 10 s. */
  readonly stopGraceMs?: number;
}

/** The arguments Envoy is started with. */
export function envoyArgs(bootstrap: string, extraArgs: readonly string[] = []): string[] {
  // A drain shorter than Kubernetes' default 30 s grace period, so in-flight requests finish first.
  return ['-c', bootstrap, '--drain-time-s', '20', '--parent-shutdown-time-s', '25', ...extraArgs];
}

export class EnvoyProcess {
  private child: ChildProcess | undefined;
  private reason: string | undefined = 'envoy has not been started yet';
  private readonly backoff = new Backoff({ initialMs: 1_000, maxMs: 30_000 });
  private readonly clock: Clock;
  private restartTimer: ClockTimer | undefined;
  private startedAt = 0;
  private stopped = false;
  private runs = 0;

  constructor(private readonly options: EnvoyProcessOptions) {
    this.clock = options.clock ?? systemClock;
  }

  /** Why Envoy is not running, or undefined when it is. */
  notRunningReason(): string | undefined {
    return this.reason;
  }

  /** How many times Envoy was started (restarts included). */
  get starts(): number {
    return this.runs;
  }

  /** The running process id, if any. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  start(): void {
    if (this.stopped || this.child) return;
    const { binary, bootstrap, extraArgs, logger } = this.options;
    const args = envoyArgs(bootstrap, extraArgs);
    this.runs += 1;
    this.startedAt = this.clock.now();
    let child: ChildProcess;
    try {
      child = spawn(binary, args, { stdio: ['ignore', 'inherit', 'inherit'] });
    } catch (err) {
      this.failed(`envoy could not be started: ${(err as Error).message}`);
      return;
    }
    this.child = child;
    child.once('spawn', () => {
      this.reason = undefined;
      logger.info({ binary, args, pid: child.pid }, 'envoy started');
    });
    child.once('error', (err: NodeJS.ErrnoException) => {
      // ENOENT/EACCES: never ran ('exit' does not follow).
      if (child.pid === undefined) {
        this.child = undefined;
        this.failed(`envoy could not be started: ${binary}: ${err.code ?? err.message}`);
      }
    });
    child.once('exit', (code, signal) => {
      this.child = undefined;
      if (this.stopped) return;
      if (this.clock.now() - this.startedAt >= 60_000) this.backoff.reset();
      this.failed(`envoy exited (${signal ? `signal ${signal}` : `code ${String(code)}`})`);
    });
  }

  private failed(reason: string): void {
    this.reason = reason;
    if (this.stopped) return;
    const delay = this.backoff.next();
    this.options.logger.error({ binary: this.options.binary, reason, retryInMs: delay }, 'envoy is not running');
    this.restartTimer = this.clock.setTimeout(() => {
      this.restartTimer = undefined;
      this.start();
    }, delay);
    this.restartTimer.unref();
  }

  /** Stops Envoy (SIGTERM, then SIGKILL after the grace) and any restart. Idempotent. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.clock.clearTimeout(this.restartTimer);
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const grace = setTimeout(() => child.kill('SIGKILL'), this.options.stopGraceMs ?? 10_000);
    await exited;
    clearTimeout(grace);
  }
}
