// docs/reference/ports-metrics-labels.md, from the code:
// - ports: api/names.ts `Ports`, each value with its doc comment;
// - metrics: every prom-client metric the product constructs (`new Counter|Gauge|Histogram|Summary({...})`
//   in api/, lib/, certs/, crds/, injector/, sidecar/, deploy/, control-plane/), read from the TypeScript
//   syntax tree: name, type, help, labels, file. A name built from a template (the xDS engine's
//   `${prefix}_pushes_total`) is resolved from the registries the product really creates with it (the
//   control plane's XdsMetrics, the agent's SDS server), so every name listed is one a registry holds; a
//   template no registry resolves stops the generator, naming the file;
// - labels and annotations: every exported constant of api/ and injector/annotations.ts whose value is a
//   Kubernetes label or annotation key (`prefix.dev/name`), with its doc comment and the values declared
//   beside it (INJECT_ENABLED beside INJECT_LABEL).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import ts from 'typescript';
import { Registry } from 'prom-client';
import { Ports } from '../../api/names.js';
import { PORTS_METRICS_LABELS_REFERENCE } from './index.js';
import { code, formatMarkdown, repoRoot, table } from './markdown.js';

/** The product's folders (the layering's `product`, .dependency-cruiser.cjs). */
export const PRODUCT_FOLDERS = ['api', 'lib', 'certs', 'crds', 'injector', 'sidecar', 'deploy', 'control-plane'];
const SKIPPED = /(^|\/)(node_modules|dist)\/|^control-plane\/envoy\/gen\//;

function productFiles(): string[] {
  const out: string[] = [];
  const visit = (dir: string): void => {
    for (const entry of fs.readdirSync(path.join(repoRoot, dir), { withFileTypes: true })) {
      const rel = `${dir}/${entry.name}`;
      if (SKIPPED.test(`${rel}/`)) continue;
      if (entry.isDirectory()) visit(rel);
      else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) out.push(rel);
    }
  };
  for (const folder of PRODUCT_FOLDERS) if (fs.existsSync(path.join(repoRoot, folder))) visit(folder);
  return out.sort();
}

function parse(file: string): ts.SourceFile {
  return ts.createSourceFile(file, fs.readFileSync(path.join(repoRoot, file), 'utf8'), ts.ScriptTarget.ES2022, true);
}

/** The text of a string literal, a template without substitutions, or a concatenation of them; else undefined. */
function literal(node: ts.Expression | undefined): string | undefined {
  if (!node) return undefined;
  if (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) return node.text;
  if (ts.isParenthesizedExpression(node)) return literal(node.expression);
  if (ts.isBinaryExpression(node) && node.operatorToken.kind === ts.SyntaxKind.PlusToken) {
    const left = literal(node.left);
    const right = literal(node.right);
    return left !== undefined && right !== undefined ? left + right : undefined;
  }
  return undefined;
}

/** The doc comment (`/** … *\/`) right before a node, as one line of prose. */
function docOf(node: ts.Node): string {
  const text = node.getSourceFile().getFullText();
  const ranges = ts.getLeadingCommentRanges(text, node.getFullStart()) ?? [];
  const docs = ranges
    .map((r) => text.slice(r.pos, r.end))
    .filter((c) => c.startsWith('/**'))
    .map((c) =>
      c
        .replace(/^\/\*\*|\*\/$/g, '')
        .split('\n')
        .map((l) => l.replace(/^\s*\* ?/, '').trim())
        .join(' ')
        .trim(),
    );
  return docs.at(-1) ?? '';
}

// ---------------------------------------------------------------------------------------------------
// Metrics

export interface MetricRow {
  readonly name: string;
  readonly type: 'counter' | 'gauge' | 'histogram' | 'summary';
  readonly help: string;
  readonly labels: readonly string[];
  readonly process: 'control plane' | 'agent';
  readonly file: string;
}

interface FoundMetric {
  readonly file: string;
  readonly type: MetricRow['type'];
  /** The literal name, or undefined for a template. */
  readonly name: string | undefined;
  /** The template's text after its last substitution (`_pushes_total`). */
  readonly tail: string;
  readonly help: string | undefined;
  readonly labels: readonly string[];
}

const METRIC_CLASSES: Readonly<Record<string, MetricRow['type']>> = {
  Counter: 'counter',
  Gauge: 'gauge',
  Histogram: 'histogram',
  Summary: 'summary',
};

/** Every `new Counter|Gauge|Histogram|Summary({...})` of the product, as written. */
export function metricsInCode(): FoundMetric[] {
  const found: FoundMetric[] = [];
  for (const file of productFiles()) {
    const source = parse(file);
    const visit = (node: ts.Node): void => {
      if (ts.isNewExpression(node) && ts.isIdentifier(node.expression) && METRIC_CLASSES[node.expression.text]) {
        const config = node.arguments?.[0];
        if (config && ts.isObjectLiteralExpression(config)) {
          const prop = (key: string): ts.Expression | undefined => {
            for (const p of config.properties) {
              if (ts.isPropertyAssignment(p) && p.name.getText(source) === key) return p.initializer;
            }
            return undefined;
          };
          const nameNode = prop('name');
          const name = literal(nameNode);
          const tail =
            nameNode && ts.isTemplateExpression(nameNode) ? (nameNode.templateSpans.at(-1)?.literal.text ?? '') : '';
          let labelsNode = prop('labelNames');
          while (labelsNode && (ts.isAsExpression(labelsNode) || ts.isParenthesizedExpression(labelsNode))) {
            labelsNode = labelsNode.expression;
          }
          const labels =
            labelsNode && ts.isArrayLiteralExpression(labelsNode)
              ? labelsNode.elements.map((e) => literal(e as ts.Expression) ?? e.getText(source))
              : [];
          if (nameNode && name === undefined && !tail) {
            throw new Error(`${file}: metric name ${nameNode.getText(source)} is neither a literal nor a template`);
          }
          found.push({
            file,
            type: METRIC_CLASSES[node.expression.text]!,
            name,
            tail,
            help: literal(prop('help')),
            labels,
          });
        }
      }
      ts.forEachChild(node, visit);
    };
    visit(source);
  }
  return found;
}

function processOf(file: string): MetricRow['process'] {
  return file.startsWith('sidecar/') ? 'agent' : 'control plane';
}

interface RuntimeMetric {
  readonly name: string;
  readonly help: string;
  readonly type: MetricRow['type'];
  readonly labels: readonly string[];
  readonly process: MetricRow['process'];
}

/**
 * The registries the product builds from templated names: the control plane's xDS metrics
 * (control-plane/control-plane.ts: new XdsMetrics()) and the agent's SDS server (sidecar/sds-server.ts).
 */
async function templatedRegistries(): Promise<RuntimeMetric[]> {
  const { XdsMetrics } = await import('../../control-plane/xds/metrics.js');
  const { SdsServer } = await import('../../sidecar/sds-server.js');
  const controlPlane = new XdsMetrics().registry;
  const agent = new Registry();
  const sds = new SdsServer({ socketPath: path.join(os.tmpdir(), 'trellis-docs-unbound.sock'), registry: agent });
  await sds.close(0);
  const out: RuntimeMetric[] = [];
  for (const [registry, process] of [
    [controlPlane, 'control plane'],
    [agent, 'agent'],
  ] as const) {
    for (const m of await registry.getMetricsAsJSON()) {
      const metric = registry.getSingleMetric(m.name) as unknown as { labelNames?: readonly string[] } | undefined;
      out.push({
        name: m.name,
        help: m.help,
        type: String(m.type) as MetricRow['type'],
        labels: metric?.labelNames ?? [],
        process,
      });
    }
  }
  return out;
}

export async function productMetrics(): Promise<MetricRow[]> {
  const inCode = metricsInCode();
  const runtime = inCode.some((m) => m.name === undefined) ? await templatedRegistries() : [];
  const rows = new Map<string, MetricRow>();
  const add = (row: MetricRow): void => {
    const key = `${row.process}\0${row.name}`;
    if (!rows.has(key)) rows.set(key, row);
  };
  for (const m of inCode) {
    if (m.name !== undefined) {
      add({
        name: m.name,
        type: m.type,
        help: m.help ?? '',
        labels: m.labels,
        process: processOf(m.file),
        file: m.file,
      });
      continue;
    }
    const resolved = runtime.filter((r) => r.name.endsWith(m.tail) && r.type === m.type);
    if (resolved.length === 0) {
      throw new Error(
        `${m.file}: no registry of scripts/reference/ports-metrics-labels.ts holds a ${m.type} named …${m.tail}; add the registry that creates it`,
      );
    }
    for (const r of resolved) add({ ...r, file: m.file });
  }
  return [...rows.values()].sort((a, b) => a.process.localeCompare(b.process) || a.name.localeCompare(b.name));
}

/** `collectDefaultMetrics({ prefix })` calls: prom-client's process and Node.js metrics. */
function defaultMetricPrefixes(): { file: string; prefix: string }[] {
  const out: { file: string; prefix: string }[] = [];
  for (const file of productFiles()) {
    const source = parse(file);
    const visit = (node: ts.Node): void => {
      if (ts.isCallExpression(node) && node.expression.getText(source) === 'collectDefaultMetrics') {
        const config = node.arguments[0];
        let prefix = '';
        if (config && ts.isObjectLiteralExpression(config)) {
          for (const p of config.properties) {
            if (ts.isPropertyAssignment(p) && p.name.getText(source) === 'prefix')
              prefix = literal(p.initializer) ?? '';
          }
        }
        out.push({ file, prefix });
      }
      ts.forEachChild(node, visit);
    };
    visit(source);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Ports

function portRows(): string[][] {
  const source = parse('api/names.ts');
  const rows: string[][] = [];
  const visit = (node: ts.Node): void => {
    if (ts.isVariableDeclaration(node) && node.name.getText(source) === 'Ports' && node.initializer) {
      let init: ts.Expression = node.initializer;
      while (ts.isAsExpression(init) || ts.isParenthesizedExpression(init)) init = init.expression;
      if (ts.isObjectLiteralExpression(init)) {
        for (const p of init.properties) {
          const key = p.name?.getText(source) as keyof typeof Ports | undefined;
          if (!key || !(key in Ports)) continue;
          const doc = docOf(p);
          const colon = doc.indexOf(': ');
          const [who, what] = colon === -1 ? ['', doc] : [doc.slice(0, colon), doc.slice(colon + 2)];
          rows.push([String(Ports[key]), who, what, code(`Ports.${key}`)]);
        }
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return rows.sort((a, b) => Number(a[0]) - Number(b[0]));
}

// ---------------------------------------------------------------------------------------------------
// Labels and annotations

const KEY = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?\.)+[a-z]{2,}\/[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;

interface KeyRow {
  readonly key: string;
  readonly kind: 'label' | 'annotation';
  readonly description: string;
  readonly values: readonly string[];
  readonly constant: string;
}

function keyRows(): KeyRow[] {
  const files = [...productFiles().filter((f) => f.startsWith('api/')), 'injector/annotations.ts'];
  const consts = new Map<string, { value: string; doc: string; file: string }>();
  const rows: KeyRow[] = [];
  for (const file of files) {
    const source = parse(file);
    for (const statement of source.statements) {
      if (!ts.isVariableStatement(statement)) continue;
      if (!statement.modifiers?.some((m) => m.kind === ts.SyntaxKind.ExportKeyword)) continue;
      const statementDoc = docOf(statement);
      for (const declaration of statement.declarationList.declarations) {
        const name = declaration.name.getText(source);
        let init = declaration.initializer;
        while (init && (ts.isAsExpression(init) || ts.isParenthesizedExpression(init))) init = init.expression;
        const value = literal(init);
        if (value !== undefined) {
          consts.set(name, { value, doc: statementDoc, file });
          continue;
        }
        if (init && ts.isObjectLiteralExpression(init)) {
          for (const p of init.properties) {
            if (!ts.isPropertyAssignment(p)) continue;
            const v = literal(p.initializer);
            if (v === undefined || !KEY.test(v)) continue;
            const own = docOf(p);
            const member = p.name.getText(source);
            rows.push({
              key: v,
              kind: /LABEL/.test(name) ? 'label' : 'annotation',
              description: [statementDoc, own || `(${member})`].filter((s) => s !== '').join(' '),
              values: [],
              constant: `${name}.${member}`,
            });
          }
        }
      }
    }
  }
  for (const [name, c] of consts) {
    if (!KEY.test(c.value)) continue;
    const kind = /LABEL/.test(name) ? 'label' : /ANNOTATION/.test(name) ? 'annotation' : undefined;
    if (!kind) continue;
    const stem = name.replace(/_(LABEL|ANNOTATION)$/, '');
    // Values declared beside a label (INJECT_ENABLED beside INJECT_LABEL, TLS_MODE_MESH beside TLS_MODE_LABEL).
    const values =
      kind !== 'label'
        ? []
        : [...consts]
            .filter(
              ([other, o]) =>
                other !== name &&
                other.startsWith(`${stem}_`) &&
                !/_(LABEL|ANNOTATION)S?$/.test(other) &&
                !KEY.test(o.value),
            )
            .map(([, o]) => o.value);
    rows.push({ key: c.value, kind, description: c.doc, values, constant: name });
  }
  return rows.sort((a, b) => a.key.localeCompare(b.key) || a.kind.localeCompare(b.kind));
}

// ---------------------------------------------------------------------------------------------------

function prose(text: string): string {
  return text.replace(/([*_<>[\]])/g, '\\$1');
}

export async function renderPortsMetricsLabels(): Promise<string> {
  const metrics = await productMetrics();
  const defaults = defaultMetricPrefixes();
  const out: string[] = [
    '# Ports, metrics, labels and annotations',
    '',
    '<!-- Generated by scripts/reference/ports-metrics-labels.ts from api/, injector/annotations.ts and the prom-client metrics the product constructs: `npm run docs`. Do not edit. -->',
    '',
    '## Ports',
    '',
    'From `api/names.ts` (`Ports`); flags can move most of them (see the [CLI reference](cli.md)).',
    '',
    table(['Port', 'Process', 'What', 'Constant'], portRows()),
    '',
    '## Metrics',
    '',
    'The control plane serves its metrics on the monitoring port (15014, `/metrics`), the agent on 15021 (`/metrics`). Labels in parentheses; the file is where the metric is created.',
    '',
  ];
  for (const process of ['control plane', 'agent'] as const) {
    out.push(`### ${process === 'agent' ? 'Agent' : 'Control plane'}`, '');
    for (const m of metrics.filter((x) => x.process === process)) {
      const labels = m.labels.length > 0 ? ` (${m.labels.map(code).join(', ')})` : '';
      out.push(`- ${code(m.name)}${labels}, ${m.type}: ${prose(m.help)} — ${code(m.file)}`);
    }
    out.push('');
  }
  for (const d of defaults) {
    out.push(
      `With process metrics on, ${code(d.file)} also registers prom-client's default process and Node.js metrics, prefixed ${code(d.prefix)} (${code(`${d.prefix}process_resident_memory_bytes`)}, ${code(`${d.prefix}nodejs_eventloop_lag_seconds`)}, …).`,
      '',
    );
  }
  out.push(
    '## Labels and annotations',
    '',
    'From `api/` and `injector/annotations.ts`; how the injector uses them: [injector/README.md](../../injector/README.md).',
    '',
  );
  out.push(
    table(
      ['Key', 'Kind', 'Values', 'What', 'Constant'],
      keyRows().map((r) => [
        code(r.key),
        r.kind,
        r.values.map(code).join(', '),
        prose(r.description),
        code(r.constant),
      ]),
    ),
    '',
  );
  return formatMarkdown(out.join('\n'), PORTS_METRICS_LABELS_REFERENCE);
}
