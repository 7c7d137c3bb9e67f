// A control plane with the CA in local mode (--state-dir + --tokens-file, both in a temp dir) on 127.0.0.1
// free ports, its log lines captured as objects; and that log capture on its own.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import type { CaOptions } from '../../control-plane/ca/setup.js';
import {
  startControlPlane,
  type ControlPlaneOptions,
  type RunningControlPlane,
} from '../../control-plane/control-plane.js';
import { createLogger, type Logger } from '../../control-plane/logger.js';

export type LogLine = Record<string, unknown>;

/** A logger at `level` whose JSON lines are parsed into `lines` as they are written. */
export function captureLogs(level = 'info'): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line) as LogLine);
      cb();
    },
  });
  return { logger: createLogger({ level, destination }), lines };
}

export function makeTempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** One entry of a tokens file (--tokens-file). */
export interface CaToken {
  readonly token: string;
  readonly namespace: string;
  readonly serviceAccount: string;
}

/** Writes `tokens` to `file` as a YAML tokens file. */
export function writeTokensFile(file: string, tokens: readonly CaToken[]): void {
  fs.writeFileSync(
    file,
    tokens
      .map((e) => `- { token: ${e.token}, namespace: ${e.namespace}, serviceAccount: ${e.serviceAccount} }\n`)
      .join(''),
  );
}

export interface CaControlPlaneOptions<T extends RunningControlPlane> extends Omit<
  Partial<ControlPlaneOptions>,
  'logger' | 'ca'
> {
  /** The callers the CA knows (written to `<dir>/tokens.yaml`). */
  readonly tokens: readonly CaToken[];
  /** Use this directory (left in place by cleanup()), e.g. to restart on the same CA; else a new temp dir. */
  readonly dir?: string;
  /** The prefix of the new temp dir. */
  readonly prefix?: string;
  /** The level of the captured logger; 'silent' captures nothing. */
  readonly logLevel?: string;
  /** More CA options; stateDir (`<dir>/state`) and tokensFile are set here. */
  readonly ca?: Omit<CaOptions, 'stateDir' | 'tokensFile'>;
  /** What starts the control plane (startControlPlane unless told, e.g. startTestControlPlane). */
  readonly start?: (options: ControlPlaneOptions) => Promise<T>;
}

export interface CaControlPlane<T extends RunningControlPlane = RunningControlPlane> {
  readonly cp: T;
  /** Its log lines, parsed. */
  readonly logs: LogLine[];
  readonly dir: string;
  readonly tokensFile: string;
  readonly stateDir: string;
  /** Writes `token` to a token file `name` in `dir` and returns its path. */
  tokenFile(name: string, token: string): string;
  /** Closes the control plane only (the directory stays, for a restart on the same CA). */
  close(): Promise<void>;
  /** Closes the control plane and removes the directory if it was made here. */
  cleanup(): Promise<void>;
}

/**
 * A control plane with the CA in local mode: plaintext xDS, TLS xDS and monitoring on free ports (unless
 * told otherwise), the CA's state in `<dir>/state` and its callers in `<dir>/tokens.yaml`.
 */
export async function startCaControlPlane<T extends RunningControlPlane = RunningControlPlane>(
  options: CaControlPlaneOptions<T>,
): Promise<CaControlPlane<T>> {
  const { tokens, dir: given, prefix = 'trellis-ca-', logLevel = 'info', ca, start, ...cpOptions } = options;
  const dir = given ?? makeTempDir(prefix);
  const tokensFile = path.join(dir, 'tokens.yaml');
  const stateDir = path.join(dir, 'state');
  const { logger, lines } = captureLogs(logLevel);
  let cp: T;
  try {
    writeTokensFile(tokensFile, tokens);
    const full: ControlPlaneOptions = {
      logger,
      xdsPort: 0,
      secureXdsPort: 0,
      monitoringPort: 0,
      ...cpOptions,
      ca: { ...ca, stateDir, tokensFile },
    };
    cp = start ? await start(full) : ((await startControlPlane(full)) as T);
  } catch (err) {
    if (!given) fs.rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    cp,
    logs: lines,
    dir,
    tokensFile,
    stateDir,
    tokenFile(name, token) {
      const file = path.join(dir, name);
      fs.writeFileSync(file, `${token}\n`);
      return file;
    },
    close: () => cp.close(),
    async cleanup() {
      await cp.close();
      if (!given) fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
