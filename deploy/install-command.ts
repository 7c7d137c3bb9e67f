// `trellis install`: deploy/install.yaml with the user's options, on stdout.
import fs from 'node:fs';
import { MeshConfigError, parseMeshConfig } from '../control-plane/translate/mesh-config.js';
import { parse } from 'yaml';
import { installObjects, type InstallOptions } from './manifest.js';
import { renderObjects } from './render.js';

/** The options of `trellis install` (install-cli.ts). */
export interface InstallCommandOptions {
  readonly imageTag?: string;
  readonly registry?: string;
  readonly replicas?: number;
  readonly meshConfig?: string;
}

export interface InstallStreams {
  readonly stdout: { write(text: string): unknown };
  readonly stderr: { write(text: string): unknown };
}

/** Reads and checks `--mesh-config`; its text goes into the ConfigMap as it is. */
function meshConfigText(file: string): string {
  const text = fs.readFileSync(file, 'utf8');
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (err) {
    throw new MeshConfigError([`${file}: does not parse: ${(err as Error).message.split('\n', 1)[0]}`]);
  }
  parseMeshConfig(doc ?? {}, file);
  return text.endsWith('\n') ? text : `${text}\n`;
}

/** Prints the manifest; returns the exit code (2 when an option is wrong, with the reason on stderr). */
export function runInstall(opts: InstallCommandOptions, io: InstallStreams): number {
  let meshConfig: string | undefined;
  if (opts.meshConfig !== undefined) {
    try {
      meshConfig = meshConfigText(opts.meshConfig);
    } catch (err) {
      const lines = err instanceof MeshConfigError ? err.errors : [`${opts.meshConfig}: ${(err as Error).message}`];
      io.stderr.write(`error: --mesh-config is invalid:\n  ${lines.join('\n  ')}\n`);
      return 2;
    }
  }
  if (opts.imageTag !== undefined && !/^[\w][\w.-]{0,127}$/.test(opts.imageTag)) {
    io.stderr.write(
      `error: --image-tag "${opts.imageTag}" is not a valid image tag ([A-Za-z0-9_][A-Za-z0-9_.-]{0,127})\n`,
    );
    return 2;
  }
  const options: InstallOptions = {
    ...(opts.imageTag !== undefined ? { imageTag: opts.imageTag } : {}),
    ...(opts.registry !== undefined ? { registry: opts.registry } : {}),
    ...(opts.replicas !== undefined ? { replicas: opts.replicas } : {}),
    ...(meshConfig !== undefined ? { meshConfig } : {}),
  };
  io.stdout.write(renderObjects(installObjects(options)));
  return 0;
}
