// `trellis validate -f PATH...`: validates the VirtualServices, DestinationRules, PeerAuthentications and AuthorizationPolicies in
// files, directories (recursively: .yaml, .yml, .json) and stdin (`-`), then checks them against each other
// and against the Services found in the same input. Other kinds (Namespace, EndpointSlice, Pod, …) are skipped.
//
// Output: one line per issue on stdout, sorted by file, document and path:
//   reviews.yaml#2: VirtualService default/reviews: spec.http[0].route[1].weight: must be >= 0
//   reviews.yaml#3: warning: DestinationRule default/reviews: spec.host: no Service … (…)
// Documents are numbered from 1. A summary goes to stderr.
// Exit status: 0 when there is no error (warnings allowed), 1 when some document has an error (every error
// is listed), 2 for usage errors and unreadable files.
import fs from 'node:fs';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import type { V1Service } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { crossCheck, crossCheckPeerAuthentications } from './cross-checks.js';
import { isObject } from './schema.js';
import {
  API_VERSION,
  GROUP,
  SECURITY_API_VERSION,
  SECURITY_GROUP,
  type PeerAuthentication,
  type RoutingResource,
  type ServiceEntry,
} from './types.js';
import {
  comparePaths,
  DEFAULT_NAMESPACE,
  formatIssue,
  formatOrigin,
  validateRoutingResource,
  type Origin,
  type ValidationIssue,
  type ValidationResult,
} from './validator.js';

export interface ValidateIo {
  readonly stdin: Readable;
  readonly stdout: Writable;
  readonly stderr: Writable & { isTTY?: boolean };
  /** Show a progress count on stderr when a run takes longer than this (ms). */
  readonly progressAfterMs?: number;
}

const EXTENSIONS = new Set(['.yaml', '.yml', '.json']);

interface Source {
  /** As shown in messages: the path as given (or found under a given directory), `<stdin>` for `-`. */
  readonly name: string;
  readonly read: () => Promise<string>;
}

interface Line {
  readonly file: string;
  readonly document: number;
  readonly order: number;
  readonly text: string;
  readonly severity: 'error' | 'warning';
}

function readStream(stream: Readable): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer | string) => chunks.push(typeof c === 'string' ? Buffer.from(c) : c));
    stream.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    stream.on('error', reject);
  });
}

/** Files under a directory with a YAML or JSON extension, sorted, hidden entries skipped. */
function walk(dir: string, out: string[]): void {
  const entries = fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1));
  for (const e of entries) {
    if (e.name.startsWith('.')) continue;
    const full = path.join(dir, e.name);
    if (e.isDirectory()) walk(full, out);
    else if (e.isFile() && EXTENSIONS.has(path.extname(e.name).toLowerCase())) out.push(full);
  }
}

function describeError(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  if (e?.code === 'ENOENT') return 'no such file or directory';
  if (e?.code === 'EACCES') return 'permission denied';
  return e instanceof Error ? e.message : String(err);
}

/** Expands the arguments into sources; unreadable paths are returned as problems. */
function expand(paths: readonly string[], stdin: Readable): { sources: Source[]; problems: string[] } {
  const sources: Source[] = [];
  const problems: string[] = [];
  const seen = new Set<string>();
  let stdinUsed = false;
  const add = (file: string) => {
    const key = path.resolve(file);
    if (seen.has(key)) return;
    seen.add(key);
    sources.push({ name: file, read: () => fs.promises.readFile(file, 'utf8') });
  };
  for (const p of paths) {
    if (p === '-') {
      if (!stdinUsed) sources.push({ name: '<stdin>', read: () => readStream(stdin) });
      stdinUsed = true;
      continue;
    }
    try {
      if (fs.statSync(p).isDirectory()) {
        const files: string[] = [];
        walk(p, files);
        files.forEach(add);
      } else add(p);
    } catch (err) {
      problems.push(`cannot read ${p}: ${describeError(err)}`);
    }
  }
  return { sources, problems };
}

/** The objects of a parsed document: itself, the items of a `kind: List`, or the elements of a JSON array. */
function objectsOf(value: unknown): unknown[] {
  if (Array.isArray(value)) return value;
  if (isObject(value) && typeof value.kind === 'string' && value.kind.endsWith('List') && Array.isArray(value.items))
    return value.items;
  return [value];
}

function groupOf(apiVersion: unknown): string {
  if (typeof apiVersion !== 'string') return '';
  const slash = apiVersion.indexOf('/');
  return slash < 0 ? '' : apiVersion.slice(0, slash);
}

export interface ReportLine {
  readonly text: string;
  readonly severity: 'error' | 'warning';
}

export interface ValidationReport {
  /** Sorted by file, document, then path. */
  readonly lines: readonly ReportLine[];
  readonly errors: number;
  readonly warnings: number;
  /** VirtualServices and DestinationRules read. */
  readonly resources: number;
  /** Non-empty documents read. */
  readonly documents: number;
  /** False when the input held no Service, so hosts were not checked against Services. */
  readonly servicesChecked: boolean;
}

interface Found {
  readonly result: ValidationResult;
  readonly origin: Origin;
}

/**
 * Validates the documents of several files, then checks them against each other: what `trellis validate`
 * prints, without the I/O. Add files with addFile, then call finish once.
 */
export class ValidationRun {
  private readonly lines: Line[] = [];
  private readonly found: Found[] = [];
  private readonly services: V1Service[] = [];
  private documents = 0;
  private order = 0;

  private push(file: string, document: number, text: string, severity: 'error' | 'warning'): void {
    this.lines.push({ file, document, order: this.order++, text, severity });
  }

  addFile(name: string, text: string): void {
    parseAllDocuments(text, { prettyErrors: true, uniqueKeys: true }).forEach((doc, d) => {
      const origin: Origin = { file: name, document: d };
      if (doc.errors.length > 0) {
        // The first line of the yaml library's message ("… at line 3, column 5:", then an excerpt).
        const message = (doc.errors[0]?.message ?? 'cannot parse').split('\n')[0]?.replace(/:$/, '');
        this.push(name, d, `${formatOrigin(origin)}: invalid YAML: ${message}`, 'error');
        return;
      }
      let value: unknown;
      try {
        value = doc.toJS({ maxAliasCount: 1000 });
      } catch (err) {
        this.push(name, d, `${formatOrigin(origin)}: invalid YAML: ${describeError(err)}`, 'error');
        return;
      }
      if (value === null || value === undefined) return;
      this.documents++;
      for (const o of objectsOf(value)) this.addObject(o, origin);
    });
  }

  private addObject(o: unknown, origin: Origin): void {
    const file = origin.file ?? '';
    const d = origin.document ?? 0;
    if (!isObject(o)) {
      this.push(file, d, `${formatOrigin(origin)}: not a Kubernetes object`, 'error');
      return;
    }
    const group = groupOf(o.apiVersion);
    const routing =
      o.kind === 'VirtualService' || o.kind === 'DestinationRule' || o.kind === 'Sidecar' || o.kind === 'ServiceEntry';
    const security = o.kind === 'PeerAuthentication' || o.kind === 'AuthorizationPolicy';
    const ours = (routing && group === GROUP) || (security && group === SECURITY_GROUP);
    if (o.kind === 'Service' && o.apiVersion === 'v1') this.services.push(o as V1Service);
    else if (ours) this.found.push({ result: validateRoutingResource(o, origin), origin });
    else if ((routing || security) && group !== '') {
      const meta = isObject(o.metadata) ? o.metadata : {};
      const ns = typeof meta.namespace === 'string' && meta.namespace !== '' ? meta.namespace : DEFAULT_NAMESPACE;
      const name = typeof meta.name === 'string' ? meta.name : '(no name)';
      this.push(
        file,
        d,
        `${formatOrigin(origin)}: warning: ${String(o.kind)} ${ns}/${name}: apiVersion: ${String(o.apiVersion)} is not served by Trellis (use ${security ? SECURITY_API_VERSION : API_VERSION}); skipped`,
        'warning',
      );
    }
    // Anything else (Namespace, EndpointSlice, Pod, ConfigMap, …) is not ours to judge.
  }

  finish(): ValidationReport {
    // The same object twice: the second is an error (kubectl would overwrite the first).
    const firstSeen = new Map<string, Found>();
    const duplicate = new Set<Found>();
    for (const f of this.found) {
      const key = `${f.result.kind}\0${f.result.namespace}\0${f.result.name}`;
      const first = firstSeen.get(key);
      if (first && f.result.name !== '') {
        duplicate.add(f);
        f.result.issues.push({
          path: 'metadata.name',
          message: `also defined in ${formatOrigin(first.origin)}`,
          severity: 'error',
        });
      } else firstSeen.set(key, f);
    }

    // Cross-object checks over the valid resources.
    const valid = this.found.filter(
      (f) =>
        f.result.resource &&
        (f.result.kind === 'VirtualService' || f.result.kind === 'DestinationRule') &&
        !duplicate.has(f),
    );
    const servicesChecked = this.services.length > 0;
    // ServiceEntry hosts are services for the checks of VirtualService and DestinationRule hosts.
    const serviceEntryHosts = new Map<string, number[]>();
    for (const f of this.found) {
      if (!f.result.resource || f.result.kind !== 'ServiceEntry' || duplicate.has(f)) continue;
      const spec = (f.result.resource as ServiceEntry).spec;
      for (const h of spec.hosts ?? [])
        serviceEntryHosts.set(
          h.toLowerCase().replace(/\.$/, ''),
          (spec.ports ?? []).map((p) => p.number),
        );
    }
    const cross = crossCheck(
      valid.map((f) => f.result.resource as RoutingResource),
      servicesChecked ? this.services : undefined,
      { serviceEntryHosts },
    );
    valid.forEach((f, i) => f.result.issues.push(...(cross[i] ?? [])));
    const peers = this.found.filter(
      (f) => f.result.resource && f.result.kind === 'PeerAuthentication' && !duplicate.has(f),
    );
    const peerIssues = crossCheckPeerAuthentications(peers.map((f) => f.result.resource as PeerAuthentication));
    peers.forEach((f, i) => f.result.issues.push(...(peerIssues[i] ?? [])));

    for (const f of this.found) {
      const issues: ValidationIssue[] = [...f.result.issues].sort(
        (a, b) => comparePaths(a.path, b.path) || (a.severity === b.severity ? 0 : a.severity === 'error' ? -1 : 1),
      );
      for (const issue of issues)
        this.push(f.origin.file ?? '', f.origin.document ?? 0, formatIssue(f.result, issue, f.origin), issue.severity);
    }
    const lines = [...this.lines].sort((a, b) =>
      a.file < b.file ? -1 : a.file > b.file ? 1 : a.document - b.document || a.order - b.order,
    );
    return {
      lines: lines.map((l) => ({ text: l.text, severity: l.severity })),
      errors: lines.filter((l) => l.severity === 'error').length,
      warnings: lines.filter((l) => l.severity === 'warning').length,
      resources: this.found.length,
      documents: this.documents,
      servicesChecked,
    };
  }
}

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;

/** Runs the command; resolves with the exit status. */
export async function runValidate(paths: readonly string[], io: ValidateIo): Promise<number> {
  const started = Date.now();
  const { sources, problems } = expand(paths, io.stdin);
  for (const p of problems) io.stderr.write(`trellis validate: ${p}\n`);
  let unreadable = problems.length;
  const run = new ValidationRun();

  // Progress, for long runs only.
  let done = 0;
  let shown = false;
  const progressAfter = io.progressAfterMs ?? 1000;
  const tty = io.stderr.isTTY === true;
  const timer = setInterval(
    () => {
      if (Date.now() - started < progressAfter) return;
      shown = true;
      io.stderr.write(`${tty ? '\r' : ''}validating: ${done}/${sources.length} files${tty ? '' : '\n'}`);
    },
    Math.max(50, Math.min(progressAfter, 1000)),
  );
  timer.unref();
  try {
    for (const source of sources) {
      try {
        run.addFile(source.name, await source.read());
      } catch (err) {
        io.stderr.write(`trellis validate: cannot read ${source.name}: ${describeError(err)}\n`);
        unreadable++;
      }
      done++;
      // Let the progress timer run between files.
      await new Promise((resolve) => setImmediate(resolve));
    }
  } finally {
    clearInterval(timer);
    if (shown && tty) io.stderr.write('\n');
  }

  const report = run.finish();
  for (const l of report.lines) io.stdout.write(`${l.text}\n`);
  if (!report.servicesChecked && report.resources > 0)
    io.stderr.write('note: no Service in the input, so hosts were not checked against Services\n');
  io.stderr.write(
    `${plural(report.resources, 'resource')} in ${plural(sources.length, 'file')} ` +
      `(${plural(report.documents, 'document')}): ${plural(report.errors, 'error')}, ${plural(report.warnings, 'warning')}\n`,
  );
  if (unreadable > 0) return 2;
  return report.errors > 0 ? 1 : 0;
}
