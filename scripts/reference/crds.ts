// docs/reference/crds.md from the CRD objects `npm run crds` writes (crds/schema.ts, crds/schema/): for
// every kind its group, version, names and printer columns, then every field of spec and status with its
// type, whether it is required, its default, enum, limits and description, and every CEL rule
// (x-kubernetes-validations) with its message. Kinds come from crds/generate.ts's CRD_FILES, so a new
// CRD is documented as soon as `npm run crds` writes it.
import { CRD_FILES } from '../../crds/generate.js';
import { customResourceDefinition, type CrdKind, type JSONSchemaProps } from '../../crds/schema.js';
import { CRD_REFERENCE } from './index.js';
import { code, formatMarkdown, table } from './markdown.js';

interface CrdVersion {
  readonly name: string;
  readonly additionalPrinterColumns?: readonly { name: string; jsonPath: string; description?: string }[];
  readonly schema: { readonly openAPIV3Schema: JSONSchemaProps };
}

interface Crd {
  readonly spec: {
    readonly group: string;
    readonly scope: string;
    readonly names: {
      readonly kind: string;
      readonly plural: string;
      readonly singular: string;
      readonly shortNames?: readonly string[];
      readonly categories?: readonly string[];
    };
    readonly versions: readonly CrdVersion[];
  };
}

/** A schema node as the CRD has it: JSONSchemaProps plus what a structural schema may add. */
type Node = JSONSchemaProps & {
  default?: unknown;
  nullable?: boolean;
  'x-kubernetes-int-or-string'?: boolean;
  'x-kubernetes-preserve-unknown-fields'?: boolean;
};

function typeOf(node: Node): string {
  if (node['x-kubernetes-int-or-string']) return 'int-or-string';
  if (node.type === 'array') return `[]${node.items ? typeOf(node.items) : 'any'}`;
  if (node.type === 'object' && node.additionalProperties && !node.properties) {
    return `map[string]${typeOf(node.additionalProperties)}`;
  }
  if (node.type === 'object' && !node.properties && node['x-kubernetes-preserve-unknown-fields']) return 'any';
  return node.type ?? 'any';
}

function limits(node: Node): string[] {
  const out: string[] = [];
  if (node.enum) out.push(`one of ${node.enum.map((v) => code(String(v))).join(', ')}`);
  if (node.default !== undefined) out.push(`default ${code(JSON.stringify(node.default))}`);
  if (node.format) out.push(`format ${code(node.format)}`);
  if (node.pattern) out.push(`pattern ${code(node.pattern)}`);
  if (node.minimum !== undefined) out.push(`≥ ${node.minimum}`);
  if (node.maximum !== undefined) out.push(`≤ ${node.maximum}`);
  if (node.minLength !== undefined) out.push(`min length ${node.minLength}`);
  if (node.maxLength !== undefined) out.push(`max length ${node.maxLength}`);
  if (node.minItems !== undefined) out.push(`min items ${node.minItems}`);
  if (node.maxItems !== undefined) out.push(`max items ${node.maxItems}`);
  if (node.minProperties !== undefined) out.push(`min entries ${node.minProperties}`);
  if (node.maxProperties !== undefined) out.push(`max entries ${node.maxProperties}`);
  if (node['x-kubernetes-list-type']) {
    const keys = node['x-kubernetes-list-map-keys'];
    out.push(
      `list type ${code(node['x-kubernetes-list-type'])}${keys ? ` keyed by ${keys.map(code).join(', ')}` : ''}`,
    );
  }
  if (node.nullable) out.push('nullable');
  return out;
}

interface FieldRow {
  readonly path: string;
  readonly node: Node;
  readonly required: boolean;
}

interface RuleRow {
  readonly path: string;
  readonly rule: string;
  readonly message: string;
}

/** Every field under `node` (depth first, in the schema's order), and every CEL rule with where it sits. */
function walk(node: Node, at: string, required: boolean, fields: FieldRow[], rules: RuleRow[]): void {
  fields.push({ path: at, node, required });
  for (const r of node['x-kubernetes-validations'] ?? []) {
    rules.push({ path: r.fieldPath ? `${at}${r.fieldPath}` : at, rule: r.rule, message: r.message });
  }
  descend(node, at, fields, rules);
}

function descend(node: Node, at: string, fields: FieldRow[], rules: RuleRow[]): void {
  if (node.properties) {
    const required = new Set(node.required ?? []);
    for (const [name, child] of Object.entries(node.properties)) {
      walk(child as Node, `${at}.${name}`, required.has(name), fields, rules);
    }
  }
  if (node.additionalProperties) descendInto(node.additionalProperties as Node, `${at}.<key>`, fields, rules);
  if (node.items) descendInto(node.items as Node, `${at}[]`, fields, rules);
}

/** An element of a list or map: its rules and fields, without a row of its own (its parent's type says it). */
function descendInto(node: Node, at: string, fields: FieldRow[], rules: RuleRow[]): void {
  for (const r of node['x-kubernetes-validations'] ?? []) {
    rules.push({ path: r.fieldPath ? `${at}${r.fieldPath}` : at, rule: r.rule, message: r.message });
  }
  const elementLimits = limits(node);
  if (elementLimits.length > 0 && !node.properties) {
    fields.push({ path: at, node, required: false });
  }
  descend(node, at, fields, rules);
}

/** Prose from a schema, with the characters Markdown would read as emphasis or HTML escaped. */
function prose(text: string): string {
  return text.replace(/([*_<>[\]])/g, '\\$1');
}

function describe(node: Node): string {
  const parts = [prose(node.description ?? ''), ...limits(node).map((l) => `${l[0]!.toUpperCase()}${l.slice(1)}.`)];
  return parts.filter((p) => p !== '').join(' ');
}

function kindSection(kind: CrdKind): string {
  const crd = customResourceDefinition(kind) as unknown as Crd;
  const { group, names, scope } = crd.spec;
  const out: string[] = [];
  for (const version of crd.spec.versions) {
    const root = version.schema.openAPIV3Schema as Node;
    out.push(`## ${names.kind}`, '');
    out.push(
      [
        `${code(`${group}/${version.name}`)}, ${scope.toLowerCase()}; resource ${code(names.plural)}`,
        names.shortNames?.length ? `, short name ${names.shortNames.map(code).join(', ')}` : '',
        names.categories?.length ? `, categories ${names.categories.map(code).join(', ')}` : '',
        '.',
      ].join(''),
      '',
    );
    if (root.description) out.push(prose(root.description), '');
    const columns = version.additionalPrinterColumns ?? [];
    if (columns.length > 0) {
      out.push(`\`kubectl get ${names.plural}\` columns:`, '');
      out.push(
        table(
          ['Column', 'JSONPath', 'Description'],
          columns.map((c) => [c.name, code(c.jsonPath), c.description ?? '']),
        ),
        '',
      );
    }
    const fields: FieldRow[] = [];
    const rules: RuleRow[] = [];
    for (const top of ['spec', 'status'] as const) {
      const node = root.properties?.[top] as Node | undefined;
      if (node) walk(node, top, (root.required ?? []).includes(top), fields, rules);
    }
    out.push(`### ${names.kind} fields`, '');
    out.push(
      ...fields.map((f) => {
        const facts = [code(typeOf(f.node)), ...(f.required ? ['required'] : [])].join(', ');
        const text = describe(f.node);
        return `- ${code(f.path)} (${facts})${text ? `: ${text}` : ''}`;
      }),
      '',
    );
    if (rules.length > 0) {
      out.push(`### ${names.kind} validation rules`, '');
      out.push(
        'CEL rules (`x-kubernetes-validations`) that the API server evaluates, and `trellis validate` and the webhook with them. The message is what a refused object is told, after the field.',
        '',
      );
      out.push(...rules.map((r) => `- ${code(r.path)}: ${prose(r.message)} — ${code(r.rule)}`), '');
    }
  }
  return out.join('\n');
}

export async function renderCrdReference(): Promise<string> {
  const kinds = Object.keys(CRD_FILES) as CrdKind[];
  const doc = [
    '# CRD reference',
    '',
    '<!-- Generated by scripts/reference/crds.ts from the CRD schemas (crds/schema/): `npm run docs`. Do not edit. -->',
    '',
    'Every kind Trellis defines, with every field of `spec` and `status` and the validation rules, from the same schemas `npm run crds` writes into `crds/*.yaml`. A path is written from the object: `spec.http[].route[]` is an element of a list, `<key>` a key of a map.',
    '',
    ...kinds.map((k) => `- [${k}](#${k.toLowerCase()})`),
    '',
    ...kinds.map(kindSection),
  ].join('\n');
  return formatMarkdown(doc, CRD_REFERENCE);
}
