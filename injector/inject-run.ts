// `trellis inject`: injectPod over multi-document YAML, offline (like `istioctl kube-inject`). Pods and
// the pod templates of Deployments, StatefulSets, DaemonSets, ReplicaSets, Jobs and CronJobs are
// injected; every other document, and every pod the rules skip, is written back unchanged. Output only
// when every document could be handled: otherwise each error is printed as `Kind ns/name: field: message`
// and the exit code is 1 (2 when the input cannot be read or parsed).
import fs from 'node:fs';
import YAML, { type Document } from 'yaml';
import { injectPod, type InjectOptions } from './inject.js';
import { podOf, withPod } from './workloads.js';

export interface InjectRunIo {
  readonly stdin: NodeJS.ReadableStream;
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream as AsyncIterable<Buffer | string>) {
    chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Injects one document's object; the text to write, or the error line. */
export function injectDocument(
  object: unknown,
  options: InjectOptions,
): { object: unknown; injected: boolean } | { error: string } {
  const found = podOf(object);
  if (!found || !isRecord(object)) return { object, injected: false };
  const metadata = isRecord(object.metadata) ? object.metadata : {};
  const namespace =
    typeof metadata.namespace === 'string' && metadata.namespace !== '' ? metadata.namespace : 'default';
  const name =
    typeof metadata.name === 'string'
      ? metadata.name
      : typeof metadata.generateName === 'string'
        ? metadata.generateName
        : '';
  const result = injectPod(found.pod, { name: namespace }, options, {
    kind: String(object.kind),
    namespace,
    name,
    fieldPrefix: found.prefix,
  });
  if (result.outcome === 'error') return { error: result.error.message };
  if (result.outcome === 'skipped') return { object, injected: false };
  return { object: withPod(object, found.path, result.pod), injected: true };
}

/** Runs `trellis inject -f <file|->`; resolves with the exit code. */
export async function runInject(file: string, options: InjectOptions, io: InjectRunIo): Promise<number> {
  let text: string;
  try {
    text = file === '-' ? await readAll(io.stdin) : fs.readFileSync(file, 'utf8');
  } catch (err) {
    io.stderr.write(`error: ${file}: cannot read: ${(err as Error).message}\n`);
    return 2;
  }
  const documents: Document[] = YAML.parseAllDocuments(text) as Document[];
  const where = file === '-' ? 'stdin' : file;
  for (const [index, doc] of documents.entries()) {
    if (doc.errors.length > 0) {
      io.stderr.write(`error: ${where}#${index + 1}: does not parse: ${doc.errors[0]!.message.split('\n', 1)[0]}\n`);
      return 2;
    }
  }
  const out: string[] = [];
  const errors: string[] = [];
  for (const doc of documents) {
    const object: unknown = doc.toJS();
    if (object === null || object === undefined) continue;
    const result = injectDocument(object, options);
    if ('error' in result) {
      errors.push(result.error);
      continue;
    }
    if (result.injected) out.push(YAML.stringify(result.object, { aliasDuplicateObjects: false }));
    else {
      if (doc.directives) doc.directives.docStart = null; // the separator is written below, once
      out.push(doc.toString());
    }
  }
  if (errors.length > 0) {
    for (const line of errors) io.stderr.write(`${line}\n`);
    return 1;
  }
  io.stdout.write(out.map((d) => (d.endsWith('\n') ? d : `${d}\n`)).join('---\n'));
  return 0;
}
