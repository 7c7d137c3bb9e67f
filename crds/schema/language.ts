// The schema language the CRDs are written in: JSON-schema node builders with the limits a structural
// schema needs, and CEL rules (`x-kubernetes-validations`) that the validator evaluates from their own text
// (cel.ts). Shared by the three CRD schemas beside this file.
import { compileCel, type CelCheck } from './cel.js';
import { DURATION_PATTERN, MAX_DURATION_NS, parseDurationNs, SECONDS_DURATION_PATTERN } from '../duration.js';
import { EXPORT_TO_PATTERN, LABEL_KEY_PATTERN, LABEL_VALUE_PATTERN } from './patterns.js';

export interface CelRule {
  rule: string;
  message: string;
  /** Where the error is reported, relative to the node (`.retries.perTryTimeout`). */
  fieldPath?: string;
}

export interface JSONSchemaProps {
  type?: 'object' | 'array' | 'string' | 'integer' | 'number' | 'boolean';
  description?: string;
  format?: string;
  properties?: Record<string, JSONSchemaProps>;
  additionalProperties?: JSONSchemaProps;
  items?: JSONSchemaProps;
  required?: string[];
  enum?: (string | number | boolean)[];
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  minItems?: number;
  maxItems?: number;
  minProperties?: number;
  maxProperties?: number;
  'x-kubernetes-validations'?: CelRule[];
  'x-kubernetes-list-type'?: 'atomic' | 'set' | 'map';
  'x-kubernetes-list-map-keys'?: string[];
}

// ---------------------------------------------------------------------------------------------------
// CEL rules and their TypeScript twins.

/** A JSON object as parsed from YAML or JSON. */
export type JsonObject = Record<string, unknown>;

export function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** CEL's `has(self.field)`: the field is present (and not null, which the API server drops). */
export function has(self: unknown, field: string): boolean {
  return isObject(self) && self[field] !== undefined && self[field] !== null;
}

export function count(self: unknown, fields: readonly string[]): number {
  return fields.filter((f) => has(self, f)).length;
}

export type { CelCheck };

const twins = new WeakMap<CelRule, CelCheck>();
const compiled = new WeakMap<CelRule, CelCheck>();

/** A CEL rule, decided by the validator from its own text (cel.ts), as the API server decides it. */
export function cel(rule: string, message: string, fieldPath?: string): CelRule {
  return fieldPath ? { rule, message, fieldPath } : { rule, message };
}

/**
 * A CEL rule with a TypeScript twin that decides instead of the CEL text, for the one case where the two
 * must differ: on a malformed value the API server reports both the schema's pattern and the rule, and the
 * validator reports only the pattern (one mistake, one message). `why` says so where it is used.
 */
export function celWithTwin(rule: string, message: string, twin: CelCheck, why: string): CelRule {
  void why;
  const r = cel(rule, message);
  twins.set(r, twin);
  return r;
}

/** How the validator decides a rule: its twin where it has one, else its CEL text, compiled once. */
export function celCheck(rule: CelRule): CelCheck {
  let check = compiled.get(rule);
  if (!check) {
    check = twins.get(rule) ?? compileCel(rule.rule);
    compiled.set(rule, check);
  }
  return check;
}

export function exactlyOne(fields: readonly string[]): CelRule {
  return cel(
    fields.map((f) => `(has(self.${f}) ? 1 : 0)`).join(' + ') + ' == 1',
    `must have exactly one of ${fields.join(', ')}`,
  );
}

export function atMostOne(
  fields: readonly string[],
  message = `must have at most one of ${fields.join(', ')}`,
): CelRule {
  return cel(fields.map((f) => `(has(self.${f}) ? 1 : 0)`).join(' + ') + ' <= 1', message);
}

export function notBoth(a: string, b: string, message: string, fieldPath?: string): CelRule {
  return cel(`!(has(self.${a}) && has(self.${b}))`, message, fieldPath);
}

export function atLeastOne(fields: readonly string[], message: string): CelRule {
  return cel(fields.map((f) => `has(self.${f})`).join(' || '), message);
}

/** The list's items have distinct values at `key` (a scalar field, or `port.number`). */
export function uniqueBy(key: string, message: string): CelRule {
  const parts = key.split('.');
  const guard = (v: string): string => parts.map((_, i) => `has(${v}.${parts.slice(0, i + 1).join('.')})`).join(' && ');
  return cel(`self.all(a, !(${guard('a')}) || self.exists_one(b, ${guard('b')} && b.${key} == a.${key}))`, message);
}

export const uniqueScalars = (message: string): CelRule => cel('self.all(a, self.exists_one(b, b == a))', message);

export function keysMatch(pattern: string, message: string): CelRule {
  return cel(`self.all(k, k.matches(${celString(pattern)}))`, message);
}

/** A CEL string literal (single-quoted, raw escapes). */
export function celString(s: string): string {
  return `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

// ---------------------------------------------------------------------------------------------------
// ---------------------------------------------------------------------------------------------------
// Builders.

export const MAX_HOST = 253;
export const MAX_STRING = 1024;
export const MAX_REGEX = 1024; // Istio's limit: Envoy's RE2 program size limit is hit around here
export const INT32_MAX = 2_147_483_647;

export function str(description: string, extra: Partial<JSONSchemaProps> = {}): JSONSchemaProps {
  return { type: 'string', description, maxLength: MAX_STRING, ...extra };
}

export function int(description: string, minimum: number, maximum: number): JSONSchemaProps {
  return { type: 'integer', format: 'int32', description, minimum, maximum };
}

export function bool(description: string): JSONSchemaProps {
  return { type: 'boolean', description };
}

export function obj(
  description: string,
  properties: Record<string, JSONSchemaProps>,
  extra: Partial<JSONSchemaProps> = {},
): JSONSchemaProps {
  return { type: 'object', description, properties, ...extra };
}

export function list(
  description: string,
  items: JSONSchemaProps,
  maxItems: number,
  extra: Partial<JSONSchemaProps> = {},
) {
  return { type: 'array' as const, description, items, maxItems, ...extra };
}

export function map(
  description: string,
  values: JSONSchemaProps,
  maxProperties: number,
  extra: Partial<JSONSchemaProps> = {},
) {
  return { type: 'object' as const, description, additionalProperties: values, maxProperties, ...extra };
}

export const DURATION_RE = new RegExp(DURATION_PATTERN);
export const SECONDS_RE = new RegExp(SECONDS_DURATION_PATTERN);

// Checked only when the string fits its pattern: a pattern error is reported for it already.
export const durationAtLeast1ms = (): CelRule =>
  celWithTwin(
    "duration(self) >= duration('1ms')",
    'must be at least 1ms',
    (self) => {
      if (typeof self !== 'string' || !(DURATION_RE.test(self) || SECONDS_RE.test(self))) return true;
      const ns = parseDurationNs(self);
      return ns === undefined || ns > MAX_DURATION_NS || ns >= 1_000_000n;
    },
    'a malformed duration is reported by the pattern alone',
  );

/** A duration of at least 1 ms, in whole milliseconds (Istio's ValidateDuration). */
export function duration(description: string): JSONSchemaProps {
  return {
    type: 'string',
    description: `${description} (a duration such as 1.5s, 100ms or 1h; at least 1ms, whole milliseconds)`,
    maxLength: 32,
    pattern: DURATION_PATTERN,
    'x-kubernetes-validations': [durationAtLeast1ms()],
  };
}

/** A duration that may be 0s (0 disables or means "session"). */
export function durationOrZero(description: string): JSONSchemaProps {
  return {
    type: 'string',
    description: `${description} (a duration such as 1.5s, 100ms or 1h; 0s or whole milliseconds)`,
    maxLength: 32,
    pattern: DURATION_PATTERN,
  };
}

type StringMatchKind = 'uri' | 'strict' | 'header' | 'origin';

/**
 * StringMatch. `uri` allows an empty prefix (Envoy's path prefix may be empty); `strict` (scheme, method,
 * authority) and `origin` (CORS) need a non-empty value; `header` (headers, withoutHeaders, queryParams)
 * may also be `{}`, which matches when the header or parameter is present (Istio's semantics).
 */
export function stringMatch(description: string, kind: StringMatchKind): JSONSchemaProps {
  const one = ['exact', 'prefix', 'regex'];
  return obj(
    description,
    {
      exact: str('Exact string match.', kind === 'origin' ? { minLength: 1 } : {}),
      prefix: str('Prefix match.', kind === 'uri' ? {} : { minLength: 1 }),
      regex: str('RE2 regex, matched against the whole value.', { minLength: 1, maxLength: MAX_REGEX }),
    },
    { 'x-kubernetes-validations': [kind === 'header' ? atMostOne(one) : exactlyOne(one)] },
  );
}

export function labels(description: string): JSONSchemaProps {
  return map(description, { type: 'string', maxLength: 63, pattern: LABEL_VALUE_PATTERN }, 64, {
    'x-kubernetes-validations': [keysMatch(LABEL_KEY_PATTERN, 'keys must be Kubernetes label names')],
  });
}

export function exportTo(): JSONSchemaProps {
  return list(
    'Namespaces this resource is visible from: * (all, the default), . (its own), or namespace names.',
    { type: 'string', maxLength: 63, pattern: EXPORT_TO_PATTERN },
    32,
    {
      'x-kubernetes-validations': [
        uniqueScalars('must not contain duplicates'),
        cel("!('*' in self) || self.size() == 1", '* must be the only entry'),
      ],
    },
  );
}

export function percent(description: string): JSONSchemaProps {
  return obj(
    description,
    { value: { type: 'number', description: 'A percentage in [0, 100].', minimum: 0, maximum: 100 } },
    {
      required: ['value'],
      'x-kubernetes-validations': [
        cel('self.value <= 0.0 || self.value >= 0.0001', 'value must be 0 or at least 0.0001', '.value'),
      ],
    },
  );
}

export function portSelector(description: string): JSONSchemaProps {
  return obj(description, { number: int('Port number.', 1, 65535) }, { required: ['number'] });
}
