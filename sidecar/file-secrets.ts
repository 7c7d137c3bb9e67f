// Certificates the agent reads from files in the proxy's container, for a DestinationRule's TLS origination
// (`clientCertificate`, `privateKey`, `caCertificates`): the control plane names them to the agent's SDS as
// `file-cert:<certificate>~<key>` and `file-root:<ca>` (api/names.ts, Istio's names), and the agent serves
// them beside the workload certificate (secret-generator.ts). So a rotated file reaches Envoy as an SDS
// update, where a `filename` data source is read once, when Envoy builds the cluster.
//
// - A name is watched from the first request that names it, for the life of the agent (a pod's rules name
//   few files). A name that is neither form is not ours (sds-server.ts warns about it).
// - The files are polled (`fs.watchFile`, every `pollMs`): a Kubernetes Secret volume replaces a file by
//   swapping a symlink, which a stat sees and an inotify watch on the old file does not. A change to any
//   file of a name reads all of its files again.
// - A name is served only while all its files can be read and, for a certificate, the key belongs to the
//   certificate (X509Certificate.checkPrivateKey): a certificate and key rotated as two writes are not
//   served half-way. What cannot be served is logged (once per reason) and keeps its last good content,
//   if it had any: Envoy keeps the certificate it has rather than losing TLS to a file being rewritten.
// - Versions are the first 16 hex digits of the SHA-256 of the contents: equal files, equal version, and
//   a rewrite with the same bytes sends nothing.
import { createHash, createPrivateKey, X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import { parseFileSecretName, type FileSecretName } from '../api/names.js';
import type { Logger } from '../control-plane/logger.js';

/** The contents of one file secret, as served. */
export type FileSecret =
  | {
      readonly name: string;
      readonly kind: 'certificate';
      readonly certificateChain: Buffer;
      readonly privateKey: Buffer;
      readonly version: string;
    }
  | { readonly name: string; readonly kind: 'root'; readonly trustedCa: Buffer; readonly version: string };

export interface FileSecretsOptions {
  readonly logger: Logger;
  /** How often each watched file is checked for a change; default 1 s. */
  readonly pollMs?: number;
  /** Called after the served secrets changed (`current()` is a new map). */
  readonly onChange: () => void;
}

export const DEFAULT_FILE_POLL_MS = 1_000;

const version = (...contents: Buffer[]): string => {
  const hash = createHash('sha256');
  for (const content of contents) hash.update(content).update('\0');
  return hash.digest('hex').slice(0, 16);
};

/** The files a name reads, in order. */
function filesOf(parsed: FileSecretName): string[] {
  return parsed.kind === 'root' ? [parsed.ca] : [parsed.certificate, parsed.key];
}

export class FileSecrets {
  private readonly names = new Map<string, FileSecretName>();
  /** Names by file they read. */
  private readonly byFile = new Map<string, Set<string>>();
  private served: ReadonlyMap<string, FileSecret> = new Map();
  /** The last problem logged per name ('' once it was served). */
  private readonly reported = new Map<string, string>();
  /** A read per name at a time; `again` when a change arrived during it. */
  private readonly reading = new Map<string, { again: boolean }>();
  private closed = false;

  constructor(private readonly options: FileSecretsOptions) {}

  /** The secrets that can be served now, by name. */
  current(): ReadonlyMap<string, FileSecret> {
    return this.served;
  }

  /**
   * Starts watching `name` if it is a file secret's name (and not watched yet), and reads its files.
   * Returns whether the name is a file secret's.
   */
  watch(name: string): boolean {
    const parsed = parseFileSecretName(name);
    if (!parsed) return false;
    if (this.closed || this.names.has(name)) return true;
    this.names.set(name, parsed);
    for (const file of filesOf(parsed)) {
      let names = this.byFile.get(file);
      if (!names) {
        this.byFile.set(file, (names = new Set()));
        fs.watchFile(file, { interval: this.options.pollMs ?? DEFAULT_FILE_POLL_MS, persistent: false }, () =>
          this.changed(file),
        );
      }
      names.add(name);
    }
    this.options.logger.info({ secret: name, files: filesOf(parsed) }, 'sds: watching certificate files');
    this.refresh(name);
    return true;
  }

  /** Stops every watch. */
  close(): void {
    this.closed = true;
    for (const file of this.byFile.keys()) fs.unwatchFile(file);
    this.byFile.clear();
  }

  private changed(file: string): void {
    for (const name of this.byFile.get(file) ?? []) this.refresh(name);
  }

  /** Reads the files of `name` again (one read at a time per name; a change meanwhile reads once more). */
  private refresh(name: string): void {
    const running = this.reading.get(name);
    if (running) {
      running.again = true;
      return;
    }
    const state = { again: false };
    this.reading.set(name, state);
    const run = async (): Promise<void> => {
      do {
        state.again = false;
        const result = await this.read(name, this.names.get(name)!);
        if (this.closed) return;
        this.apply(name, result);
      } while (state.again);
    };
    run()
      .catch((err: unknown) => this.report(name, err instanceof Error ? err.message : String(err)))
      .finally(() => this.reading.delete(name));
  }

  private async read(name: string, parsed: FileSecretName): Promise<FileSecret | string> {
    let contents: Buffer[];
    try {
      contents = await Promise.all(filesOf(parsed).map((file) => fs.promises.readFile(file)));
    } catch (err) {
      return `cannot read ${(err as NodeJS.ErrnoException).path ?? 'a file'}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`;
    }
    if (parsed.kind === 'root') {
      const [trustedCa] = contents as [Buffer];
      if (trustedCa.length === 0) return `${parsed.ca} is empty`;
      return { name, kind: 'root', trustedCa, version: version(trustedCa) };
    }
    const [certificateChain, privateKey] = contents as [Buffer, Buffer];
    try {
      if (!new X509Certificate(certificateChain).checkPrivateKey(createPrivateKey(privateKey)))
        return `the key in ${parsed.key} does not belong to the certificate in ${parsed.certificate}`;
    } catch (err) {
      return `${parsed.certificate} and ${parsed.key} are not a PEM certificate and key: ${(err as Error).message}`;
    }
    return { name, kind: 'certificate', certificateChain, privateKey, version: version(certificateChain, privateKey) };
  }

  private apply(name: string, result: FileSecret | string): void {
    if (typeof result === 'string') {
      this.report(name, result);
      return;
    }
    if (this.reported.get(name) !== '') {
      this.reported.set(name, '');
      this.options.logger.info({ secret: name, version: result.version }, 'sds: serving certificate files');
    }
    if (this.served.get(name)?.version === result.version) return;
    const next = new Map(this.served);
    next.set(name, result);
    this.served = next;
    this.options.onChange();
  }

  private report(name: string, problem: string): void {
    if (this.reported.get(name) === problem) return;
    this.reported.set(name, problem);
    this.options.logger.warn(
      { secret: name, problem, serving: this.served.has(name) ? 'the last good files' : 'nothing' },
      'sds: certificate files cannot be served',
    );
  }
}
