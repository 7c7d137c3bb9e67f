// `trellis diff -f CHANGE.yaml`: what a change to VirtualServices, DestinationRules or PeerAuthentications
// would do before it is applied. The YAML is POSTed to the control plane (`/debug/diff`), which lays it
// over its live model and translates every connected proxy with and without it (inspect/config-diff.ts);
// this prints the objects' verdicts and, per proxy, the resources added, removed or changed field by field.
import fs from 'node:fs/promises';
import type { ConfigDiff } from '../inspect/config-diff.js';
import type { Json } from '../inspect/json-diff.js';
import { postJson } from './http-client.js';
import { renderData, renderTable, type OutputFormat } from './render.js';

function valueText(value: Json | undefined): string {
  if (value === undefined) return '(none)';
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

/** The human text: one row per object of the change, then one row per changed field of each proxy. */
export function renderDiff(diff: ConfigDiff): string {
  const objects = renderTable(
    ['OBJECT', 'ACTION', 'STATUS'],
    diff.objects.map((o) => [
      `${o.kind} ${o.namespace}/${o.name}`,
      o.action,
      `${o.reason}${o.message && o.message !== 'accepted' ? `: ${o.message}` : ''}`,
    ]),
  );
  const rows = diff.proxies.flatMap((p) =>
    p.resources.flatMap((r) => {
      const change = r.subscribed ? r.change : `${r.change} (not subscribed)`;
      return r.change !== 'changed'
        ? [[p.proxy, r.type, r.name, change, '', '']]
        : r.fields.map((f) => [
            p.proxy,
            r.type,
            r.name,
            change,
            f.path,
            `${valueText(f.before)} -> ${valueText(f.after)}`,
          ]);
    }),
  );
  const proxies =
    diff.proxies.length === 0
      ? 'no proxy config changes\n'
      : renderTable(['PROXY', 'TYPE', 'RESOURCE', 'CHANGE', 'FIELD', 'BEFORE -> AFTER'], rows);
  const total = diff.proxies.length + diff.unchanged.length;
  const pushed = diff.proxies.filter((p) => p.pushed).length;
  const footer = `${diff.proxies.length} of ${total} connected ${total === 1 ? 'proxy' : 'proxies'} would change (${pushed} pushed now)${
    diff.unchanged.length > 0 ? `; unchanged: ${diff.unchanged.join(', ')}` : ''
  }\n`;
  return `${objects}\n${proxies}\n${footer}`;
}

export async function fetchDiff(base: string, yaml: string): Promise<ConfigDiff> {
  const answer = (await postJson(base, 'debug/diff', yaml, 'application/yaml')) as ConfigDiff;
  if (
    typeof answer !== 'object' ||
    answer === null ||
    !Array.isArray(answer.proxies) ||
    !Array.isArray(answer.objects)
  ) {
    throw new Error('/debug/diff: the answer is not a diff');
  }
  return answer;
}

async function readChange(file: string, stdin: NodeJS.ReadableStream): Promise<string> {
  if (file !== '-') return fs.readFile(file, 'utf8');
  const chunks: Buffer[] = [];
  for await (const chunk of stdin) chunks.push(Buffer.from(chunk as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}

export async function runDiff(options: {
  readonly controlPlane: string;
  readonly file: string;
  readonly output: OutputFormat;
  readonly stdin: NodeJS.ReadableStream;
  readonly stdout: NodeJS.WritableStream;
}): Promise<void> {
  const diff = await fetchDiff(options.controlPlane, await readChange(options.file, options.stdin));
  options.stdout.write(options.output === 'table' ? renderDiff(diff) : renderData(diff, options.output));
}
