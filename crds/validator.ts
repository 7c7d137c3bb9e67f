// The validator of VirtualService, DestinationRule, PeerAuthentication and AuthorizationPolicy objects, shared by `trellis validate`, the file
// source, the webhook and the mesh model. Three layers, each reported with the same path syntax:
//
// 1. The OpenAPI schema of crds/schema.ts (the one the API server enforces), compiled with ajv, plus
//    `additionalProperties: false` everywhere: unknown fields are errors, as with kubectl's default
//    strict field validation.
// 2. The CEL rules of that schema (`x-kubernetes-validations`), decided by their TypeScript twins, with the
//    API server's messages.
// 3. Rules a schema cannot express (RE2 syntax, prime table sizes, duplicate short names, …) and warnings.
//
// Paths start at `spec.` or `metadata.`, use `.field`, `[index]` and `[key]` for map keys:
// `spec.http[0].match[0].headers[x-user].regex`. Messages are short and fixed where possible.
import net from 'node:net';
import type { ErrorObject, ValidateFunction } from 'ajv';
import { validate as compiledAuthorizationPolicy } from './schema/compiled/authorizationpolicy.js';
import { validate as compiledDestinationRule } from './schema/compiled/destinationrule.js';
import { validate as compiledPeerAuthentication } from './schema/compiled/peerauthentication.js';
import { validate as compiledServiceEntry } from './schema/compiled/serviceentry.js';
import { validate as compiledSidecar } from './schema/compiled/sidecar.js';
import { validate as compiledVirtualService } from './schema/compiled/virtualservice.js';
import { canonicalResource } from './rules/canonical.js';
import { qualifyHost } from './rules/hosts.js';
import { istioIssues } from './rules/istio.js';
import { re2Error } from './re2.js';
import { LABEL_KEY_PATTERN, LABEL_VALUE_PATTERN, LOCALITY_PATTERN } from './schema/patterns.js';
import { DURATION_PATTERN, MAX_DURATION_NS, parseDurationNs, SECONDS_DURATION_PATTERN } from './duration.js';
import {
  celCheck,
  isObject,
  PATTERN_MESSAGES,
  apiVersionOf,
  schemaOf,
  type CrdKind,
  type JSONSchemaProps,
  type JsonObject,
} from './schema.js';
import { API_VERSION, SECURITY_API_VERSION, type MeshResource } from './types.js';

export interface Origin {
  file?: string;
  /** 0-based index of the document in a multi-document file. */
  document?: number;
}

export interface ValidationIssue {
  /** Where: `spec.http[0].route[1].weight`, `metadata.name`; empty for the object as a whole. */
  path: string;
  /** What: `must be >= 0`. */
  message: string;
  severity: 'error' | 'warning';
}

export interface ValidationResult {
  kind: CrdKind;
  namespace: string;
  name: string;
  issues: ValidationIssue[];
  /** Present when there is no error. */
  resource?: MeshResource;
}

export { re2Error };

export const DEFAULT_NAMESPACE = 'default';

// ---------------------------------------------------------------------------------------------------
// Paths

type Segment = { prop: string } | { index: number } | { key: string };

function joinPath(base: string, seg: Segment): string {
  if ('prop' in seg) return base === '' ? seg.prop : `${base}.${seg.prop}`;
  if ('index' in seg) return `${base}[${seg.index}]`;
  return `${base}[${seg.key}]`;
}

/** Renders a JSON pointer (ajv's instancePath) with the schema's help: map keys as `[key]`. */
function pointerToPath(schema: JSONSchemaProps, pointer: string): { path: string; schema?: JSONSchemaProps } {
  let path = '';
  let node: JSONSchemaProps | undefined = schema;
  if (pointer === '') return { path, schema };
  for (const raw of pointer.slice(1).split('/')) {
    const part = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (node?.type === 'array') {
      path = joinPath(path, { index: Number(part) });
      node = node.items;
    } else if (node?.properties && part in node.properties) {
      path = joinPath(path, { prop: part });
      node = node.properties[part];
    } else if (node?.additionalProperties) {
      path = joinPath(path, { key: part });
      node = node.additionalProperties;
    } else {
      path = /^\d+$/.test(part) ? joinPath(path, { index: Number(part) }) : joinPath(path, { prop: part });
      node = undefined;
    }
  }
  return { path, schema: node };
}

/** Orders paths field by field, indexes numerically. */
export function comparePaths(a: string, b: string): number {
  const split = (p: string) => p.split(/(?=[.[])/);
  const pa = split(a);
  const pb = split(b);
  for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
    const x = pa[i] as string;
    const y = pb[i] as string;
    if (x === y) continue;
    const nx = /^\[(\d+)\]$/.exec(x);
    const ny = /^\[(\d+)\]$/.exec(y);
    if (nx && ny) return Number(nx[1]) - Number(ny[1]);
    return x < y ? -1 : 1;
  }
  return pa.length - pb.length;
}

// ---------------------------------------------------------------------------------------------------
// Layer 1: the OpenAPI schema with ajv

/**
 * The schema validator of one kind: ajv's code for the schema, generated ahead of time
 * (crds/schema/compiled.ts, `npm run crds`), so validating loads neither ajv's compiler nor compiles.
 */
const COMPILED: Readonly<Record<CrdKind, ValidateFunction>> = {
  VirtualService: compiledVirtualService as unknown as ValidateFunction,
  DestinationRule: compiledDestinationRule as unknown as ValidateFunction,
  PeerAuthentication: compiledPeerAuthentication as unknown as ValidateFunction,
  AuthorizationPolicy: compiledAuthorizationPolicy as unknown as ValidateFunction,
  ServiceEntry: compiledServiceEntry as unknown as ValidateFunction,
  Sidecar: compiledSidecar as unknown as ValidateFunction,
};

/**
 * Istio fields Trellis does not implement, by kind and schema path (`*` for a list index): an object that
 * sets one is refused with a message naming the field and why, instead of a bare "unknown field".
 */
const ISTIO_ONLY_FIELDS: Readonly<Partial<Record<CrdKind, Readonly<Record<string, string>>>>> = {
  Sidecar: {
    'spec.ingress':
      'is not implemented by Trellis: inbound listeners come from the Service ports a Pod serves; leave it out',
    'spec.inboundConnectionPool':
      "is not implemented by Trellis; set connectionPool in a DestinationRule for the workload's host",
    'spec.egress[*].captureMode':
      'is not implemented by Trellis (traffic capture is set by the injector); leave it out',
    'spec.outboundTrafficPolicy.egressProxy': 'is not implemented by Trellis; leave it out',
  },
  ServiceEntry: {
    'spec.workloadSelector':
      "selects WorkloadEntries (Istio's VM workloads), which Trellis does not have; list the addresses in endpoints",
    'spec.subjectAltNames':
      'is not implemented by Trellis; set subjectAltNames in a DestinationRule tls block for the host',
    'spec.endpoints[*].network': 'is for multi-network meshes, which Trellis does not implement',
    'spec.endpoints[*].serviceAccount':
      'is not implemented by Trellis; set subjectAltNames in a DestinationRule tls block for the host',
  },
  AuthorizationPolicy: {
    'spec.provider': "is Istio's CUSTOM action (an external authorizer), which Trellis does not implement",
    'spec.targetRef':
      'attaches a policy to a gateway or Service (Istio), which Trellis does not implement; use selector',
    'spec.targetRefs':
      'attaches a policy to a gateway or Service (Istio), which Trellis does not implement; use selector',
    'spec.rules[*].from[*].source.requestPrincipals':
      "needs request authentication (JWT, Istio's RequestAuthentication), which Trellis does not implement",
    'spec.rules[*].from[*].source.notRequestPrincipals':
      "needs request authentication (JWT, Istio's RequestAuthentication), which Trellis does not implement",
    'spec.rules[*].from[*].source.serviceAccounts':
      'is not implemented by Trellis; write principals: [<trust domain>/ns/<namespace>/sa/<name>]',
    'spec.rules[*].from[*].source.notServiceAccounts':
      'is not implemented by Trellis; write notPrincipals: [<trust domain>/ns/<namespace>/sa/<name>]',
  },
};

function istioOnlyMessage(kind: CrdKind, path: string): string | undefined {
  return ISTIO_ONLY_FIELDS[kind]?.[path.replace(/\[\d+\]/g, '[*]')];
}

function validatorOf(kind: CrdKind): ValidateFunction {
  return COMPILED[kind];
}

const TYPE_NAMES: Record<string, string> = {
  string: 'a string',
  integer: 'an integer',
  number: 'a number',
  boolean: 'true or false',
  object: 'an object',
  array: 'a list',
};

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

function schemaIssue(kind: CrdKind, e: ErrorObject, value: (pointer: string) => unknown): ValidationIssue {
  const { path, schema } = pointerToPath(schemaOf(kind), e.instancePath);
  const p = e.params as Record<string, unknown>;
  const issue = (message: string, at = path): ValidationIssue => ({ path: at, message, severity: 'error' });
  switch (e.keyword) {
    case 'required':
      return issue('is required', joinPath(path, { prop: String(p.missingProperty) }));
    case 'additionalProperties': {
      const at = joinPath(path, { prop: String(p.additionalProperty) });
      return issue(istioOnlyMessage(kind, at) ?? 'unknown field', at);
    }
    case 'type':
      return issue(`must be ${TYPE_NAMES[String(p.type)] ?? String(p.type)}`);
    case 'enum': {
      const allowed = (p.allowedValues as unknown[]).map(String);
      return issue(allowed.length === 1 ? `must be ${allowed[0]}` : `must be one of: ${allowed.join(', ')}`);
    }
    case 'minimum':
      return issue(`must be >= ${String(p.limit)}`);
    case 'maximum':
      return issue(`must be <= ${String(p.limit)}`);
    case 'minLength':
      return issue(p.limit === 1 ? 'must not be empty' : `must be at least ${plural(Number(p.limit), 'character')}`);
    case 'maxLength':
      return issue(`must be at most ${plural(Number(p.limit), 'character')}`);
    case 'minItems':
      return issue(p.limit === 1 ? 'must not be empty' : `must have at least ${plural(Number(p.limit), 'item')}`);
    case 'maxItems':
      return issue(`must have at most ${plural(Number(p.limit), 'item')}`);
    case 'minProperties':
      return issue(schema?.properties ? 'must set at least one field' : 'must not be empty');
    case 'maxProperties':
      return issue(`must have at most ${plural(Number(p.limit), 'entry')}`.replace('entrys', 'entries'));
    case 'pattern': {
      const v = value(e.instancePath);
      const message = PATTERN_MESSAGES.get(String(p.pattern));
      return issue(message && typeof v === 'string' ? message(v) : `must match ${String(p.pattern)}`);
    }
    default:
      return issue(e.message ?? `fails ${e.keyword}`);
  }
}

function valueAt(root: unknown, pointer: string): unknown {
  let cur = root;
  if (pointer === '') return cur;
  for (const raw of pointer.slice(1).split('/')) {
    const part = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (Array.isArray(cur)) cur = cur[Number(part)];
    else if (isObject(cur)) cur = cur[part];
    else return undefined;
  }
  return cur;
}

// ---------------------------------------------------------------------------------------------------
// Layer 2: the CEL rules

function typeMatches(schema: JSONSchemaProps, value: unknown): boolean {
  switch (schema.type) {
    case 'object':
      return isObject(value);
    case 'array':
      return Array.isArray(value);
    case 'string':
      return typeof value === 'string';
    case 'integer':
    case 'number':
      return typeof value === 'number';
    case 'boolean':
      return typeof value === 'boolean';
    default:
      return false;
  }
}

function checkCel(
  schema: JSONSchemaProps,
  value: unknown,
  path: string,
  issues: ValidationIssue[],
  schemaIssues: ValidationIssue[],
): void {
  if (!typeMatches(schema, value)) return;
  // Longer than Go's time.Duration: CEL's duration() fails on it, so the API server refuses it too.
  if (
    (schema.pattern === DURATION_PATTERN || schema.pattern === SECONDS_DURATION_PATTERN) &&
    typeof value === 'string'
  ) {
    const ns = parseDurationNs(value);
    if (ns !== undefined && ns > MAX_DURATION_NS)
      schemaIssues.push({ path, message: 'must be less than 2562047h', severity: 'error' });
  }
  for (const rule of schema['x-kubernetes-validations'] ?? []) {
    if (!celCheck(rule)(value)) {
      const at = rule.fieldPath ? `${path}${rule.fieldPath}` : path;
      issues.push({ path: at, message: rule.message, severity: 'error' });
    }
  }
  if (Array.isArray(value) && schema.items) {
    const items = schema.items;
    value.forEach((v, i) => checkCel(items, v, joinPath(path, { index: i }), issues, schemaIssues));
  } else if (isObject(value)) {
    for (const [k, v] of Object.entries(value)) {
      const sub = schema.properties?.[k];
      if (sub) checkCel(sub, v, joinPath(path, { prop: k }), issues, schemaIssues);
      else if (schema.additionalProperties)
        checkCel(schema.additionalProperties, v, joinPath(path, { key: k }), issues, schemaIssues);
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// Layer 3: rules beyond the schema

const obj = (v: unknown): JsonObject | undefined => (isObject(v) ? v : undefined);
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const num = (v: unknown): number | undefined => (typeof v === 'number' ? v : undefined);
const entries = (v: unknown): [string, unknown][] => (isObject(v) ? Object.entries(v) : []);

/** Istio: a direct response body over 1 MiB is an error, over 100 KiB a warning. */
const DIRECT_RESPONSE_MAX_BYTES = 1_048_576;
const DIRECT_RESPONSE_WARN_BYTES = 102_400;
const DIRECT_RESPONSE_MAX_BASE64 = Math.ceil(DIRECT_RESPONSE_MAX_BYTES / 3) * 4;

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
/** DestinationRule `tls` fields that only SIMPLE and MUTUAL read (TLS origination). */
const ORIGINATION_FIELDS = [
  'caCertificates',
  'clientCertificate',
  'privateKey',
  'credentialName',
  'caCrl',
  'insecureSkipVerify',
] as const;
/** A Sidecar egress dnsName: `*.suffix` or a host name of lower-case DNS labels (Istio's ValidateWildcardDomain). */
const EGRESS_DNS_NAME = /^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** Envoy's primality test (source/common/common/utility.cc), which Istio copies: 1, 2 and 3 pass. */
function isPrime(n: number): boolean {
  if (n !== 0 && n < 4) return true;
  if (n % 2 === 0) return false;
  for (let f = 3; f * f <= n; f += 2) if (n % f === 0) return false;
  return true;
}

/** Envoy header formatters: `%%` is a literal %, `%NAME%` / `%NAME(arg)%` a command; any other % is refused. */
function unescapedPercent(value: string): boolean {
  const rest = value.replace(/%%/g, '').replace(/%[A-Z][A-Z0-9_]*(\([^)]*\))?(:[0-9]+)?%/g, '');
  return rest.includes('%');
}

function validCidr(value: string): boolean {
  const [ip, prefix, extra] = value.split('/');
  if (extra !== undefined || ip === undefined) return false;
  const family = net.isIP(ip);
  if (family === 0) return false;
  if (prefix === undefined) return true;
  if (!/^[0-9]{1,3}$/.test(prefix)) return false;
  return Number(prefix) <= (family === 4 ? 32 : 128);
}

/** The topology labels a failoverPriority may not name together with failover (Istio). */
const TOPOLOGY_LOCALITY_LABELS = [
  'topology.kubernetes.io/region',
  'topology.kubernetes.io/zone',
  'topology.istio.io/subzone',
];
const LABEL_KEY_RE = new RegExp(LABEL_KEY_PATTERN);
const LABEL_VALUE_RE = new RegExp(LABEL_VALUE_PATTERN);
const LOCALITY_RE = new RegExp(LOCALITY_PATTERN);

/**
 * Whether two locality patterns (`region/zone/subzone`, a terminal `*`) can match one locality: segment by
 * segment equal, until one of them ends (a shorter pattern covers everything below it) or has `*`.
 */
export function localitiesOverlap(a: string, b: string): boolean {
  const sa = a.split('/');
  const sb = b.split('/');
  for (let i = 0; i < Math.min(sa.length, sb.length); i++) {
    const x = sa[i]!;
    const y = sb[i]!;
    if (x === '*' || y === '*') return true;
    if (x.endsWith('*') || y.endsWith('*')) {
      const px = x.endsWith('*') ? x.slice(0, -1) : x;
      const py = y.endsWith('*') ? y.slice(0, -1) : y;
      if (!(px.startsWith(py) || py.startsWith(px))) return false;
      return true;
    }
    if (x !== y) return false;
  }
  return true;
}

class Checker {
  readonly issues: ValidationIssue[] = [];

  error(path: string, message: string): void {
    this.issues.push({ path, message, severity: 'error' });
  }

  warn(path: string, message: string): void {
    this.issues.push({ path, message, severity: 'warning' });
  }

  regex(path: string, pattern: unknown): void {
    if (typeof pattern !== 'string' || pattern === '') return;
    const err = re2Error(pattern);
    if (err !== undefined) this.error(path, `must be an RE2 regex (${err})`);
  }

  stringMatch(path: string, m: unknown): void {
    this.regex(`${path}.regex`, obj(m)?.regex);
  }

  labelKeys(path: string, labels: unknown): void {
    for (const [k] of entries(labels)) {
      const slash = k.lastIndexOf('/');
      const prefix = slash >= 0 ? k.slice(0, slash) : '';
      const name = k.slice(slash + 1);
      if (name.length > 63) this.error(`${path}[${k}]`, 'label name must be at most 63 characters');
      if (prefix.length > 253) this.error(`${path}[${k}]`, 'label prefix must be at most 253 characters');
    }
  }

  headerValues(path: string, ops: unknown): void {
    for (const op of ['set', 'add'] as const) {
      for (const [k, v] of entries(obj(ops)?.[op])) {
        if (typeof v === 'string' && unescapedPercent(v))
          this.error(`${path}.${op}[${k}]`, 'has an unescaped % (write %% for a literal %)');
      }
    }
  }

  headers(path: string, headers: unknown): void {
    this.headerValues(`${path}.request`, obj(headers)?.request);
    this.headerValues(`${path}.response`, obj(headers)?.response);
  }

  exportTo(path: string, values: unknown, namespace: string): void {
    const list = arr(values);
    const dot = list.indexOf('.');
    const own = list.indexOf(namespace);
    if (dot >= 0 && own >= 0) this.error(`${path}[${Math.max(dot, own)}]`, `duplicates . (namespace ${namespace})`);
  }

  /** Weight warnings for a list of destinations whose schema and CEL checks passed. */
  weights(path: string, route: unknown): void {
    const list = arr(route);
    if (list.length <= 1) return;
    // Only about weights that are valid one by one (errors are reported for the others).
    const valid = (w: unknown) =>
      w === undefined || (Number.isInteger(w) && (w as number) >= 0 && (w as number) <= 2_147_483_647);
    if (!list.every((d) => valid(obj(d)?.weight))) return;
    // Weights are relative (Istio): any sum is a proportion, so only a missing weight is worth a word.
    list.forEach((d, i) => {
      if (num(obj(d)?.weight) === undefined)
        this.warn(
          `${path}[${i}]`,
          'has no weight, so it gets no traffic (the weight of several destinations defaults to 0)',
        );
    });
  }

  // VirtualService -------------------------------------------------------------------------------------

  /** directResponse, redirect.prefixRewrite and what a fixed answer ignores (test/crds/vs-route-fields.test.ts). */
  routeAction(p: string, http: JsonObject): void {
    const direct = obj(http.directResponse);
    const body = obj(direct?.body);
    if (body) {
      const text = str(body.string);
      const bytes = str(body.bytes);
      // Too many characters for the schema's maxLength: reported there once.
      const tooLong =
        (text?.length ?? 0) > DIRECT_RESPONSE_MAX_BYTES || (bytes?.length ?? 0) > DIRECT_RESPONSE_MAX_BASE64;
      let size = text !== undefined && !tooLong ? Buffer.byteLength(text, 'utf8') : 0;
      if (bytes !== undefined && !tooLong) {
        if (bytes.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(bytes))
          this.error(`${p}.directResponse.body.bytes`, 'must be base64 (a multiple of 4 characters)');
        else size = Buffer.from(bytes, 'base64').length;
      }
      const at = `${p}.directResponse.body`;
      if (size > DIRECT_RESPONSE_MAX_BYTES)
        this.error(at, 'must be at most 1 MiB (Istio and Envoy refuse larger bodies)');
      else if (size > DIRECT_RESPONSE_WARN_BYTES)
        this.warn(at, 'is over 100 KiB: every proxy receives it in its config (Istio warns the same)');
    }
    if (direct && http.delegate === undefined) {
      for (const f of ['timeout', 'retries', 'mirror', 'mirrors'] as const)
        if (http[f] !== undefined) this.warn(`${p}.${f}`, 'ignored: a route with directResponse forwards nothing');
    }
    const redirect = obj(http.redirect);
    if (str(redirect?.prefixRewrite) !== undefined) {
      arr(http.match).forEach((m, j) => {
        const uri = obj(obj(m)?.uri);
        if (uri && uri.prefix === undefined)
          this.error(
            `${p}.match[${j}].uri`,
            'must be a prefix match: redirect.prefixRewrite replaces the matched prefix',
          );
      });
    }
  }

  virtualService(spec: JsonObject, namespace: string): void {
    // Hosts that differ as written but name the same FQDN.
    const seen = new Map<string, number>();
    arr(spec.hosts).forEach((h, i) => {
      if (typeof h !== 'string') return;
      const fqdn = qualifyHost(h, namespace);
      const first = seen.get(fqdn);
      if (first === undefined) seen.set(fqdn, i);
      else if (arr(spec.hosts)[first] !== h)
        this.error(`spec.hosts[${i}]`, `names the same host as spec.hosts[${first}] (${fqdn})`);
    });
    this.exportTo('spec.exportTo', spec.exportTo, namespace);
    const gateways = arr(spec.gateways);
    if (gateways.some((g) => g !== 'mesh'))
      this.warn('spec.gateways', 'ignored: Trellis has no gateways yet, the routes apply to the mesh');

    let catchAll: number | undefined;
    arr(spec.http).forEach((raw, i) => {
      const http = obj(raw);
      if (!http) return;
      const p = `spec.http[${i}]`;
      if (catchAll !== undefined) this.warn(p, `unreachable: spec.http[${catchAll}] matches every request`);
      const matches = arr(http.match);
      matches.forEach((m, j) => {
        const mp = `${p}.match[${j}]`;
        const match = obj(m);
        if (!match) return;
        for (const f of ['uri', 'scheme', 'method', 'authority'] as const) this.stringMatch(`${mp}.${f}`, match[f]);
        for (const f of ['headers', 'withoutHeaders', 'queryParams'] as const) {
          for (const [k, v] of entries(match[f])) this.stringMatch(`${mp}.${f}[${k}]`, v);
        }
        this.labelKeys(`${mp}.sourceLabels`, match.sourceLabels);
      });
      if (catchAll === undefined && (matches.length === 0 || matches.some((m) => isCatchAll(m)))) catchAll = i;
      arr(obj(http.corsPolicy)?.allowOrigins).forEach((o, j) =>
        this.stringMatch(`${p}.corsPolicy.allowOrigins[${j}]`, o),
      );
      const rewrite = obj(http.rewrite);
      this.regex(`${p}.rewrite.uriRegexRewrite.match`, obj(rewrite?.uriRegexRewrite)?.match);
      this.headers(`${p}.headers`, http.headers);
      arr(http.route).forEach((d, j) => this.headers(`${p}.route[${j}].headers`, obj(d)?.headers));
      this.weights(`${p}.route`, http.route);
      this.routeAction(p, http);
      // The authority may be rewritten in one place only (Istio).
      const request = obj(obj(http.headers)?.request);
      const authorityHeaders = ['set', 'add'].flatMap((op) =>
        Object.keys(obj(request?.[op]) ?? {})
          .filter((k) => k.toLowerCase() === ':authority' || k.toLowerCase() === 'host')
          .map((k) => `${p}.headers.request.${op}[${k}]`),
      );
      const authoritySources = (str(rewrite?.authority) !== undefined ? 1 : 0) + authorityHeaders.length;
      if (authoritySources > 1)
        this.error(
          authorityHeaders[authorityHeaders.length - 1] ?? p,
          'sets the authority a second time (rewrite.authority, :authority and host are one header)',
        );
    });

    const hosts = arr(spec.hosts)
      .filter((h): h is string => typeof h === 'string')
      .map((h) => qualifyHost(h, namespace));
    arr(spec.tls).forEach((raw, i) => {
      const tls = obj(raw);
      if (!tls) return;
      const p = `spec.tls[${i}]`;
      arr(tls.match).forEach((m, j) => {
        const match = obj(m);
        arr(match?.sniHosts).forEach((sni, k) => {
          if (typeof sni !== 'string') return;
          // Istio: every SNI host must be one of the VirtualService's hosts, or covered by one of its wildcards.
          if (!hosts.some((h) => sniCoveredBy(qualifyHost(sni, namespace), h)))
            this.error(`${p}.match[${j}].sniHosts[${k}]`, 'must be one of spec.hosts or match one of its wildcards');
        });
        arr(match?.destinationSubnets).forEach((s, k) => {
          if (typeof s === 'string' && !validCidr(s))
            this.error(`${p}.match[${j}].destinationSubnets[${k}]`, 'must be an IP address or CIDR block');
        });
        this.labelKeys(`${p}.match[${j}].sourceLabels`, match?.sourceLabels);
      });
      this.weights(`${p}.route`, tls.route);
    });

    let tcpCatchAll: number | undefined;
    arr(spec.tcp).forEach((raw, i) => {
      const tcp = obj(raw);
      if (!tcp) return;
      const p = `spec.tcp[${i}]`;
      if (tcpCatchAll !== undefined) this.warn(p, `unreachable: spec.tcp[${tcpCatchAll}] matches every connection`);
      const matches = arr(tcp.match);
      matches.forEach((m, j) => {
        const match = obj(m);
        arr(match?.destinationSubnets).forEach((s, k) => {
          if (typeof s === 'string' && !validCidr(s))
            this.error(`${p}.match[${j}].destinationSubnets[${k}]`, 'must be an IP address or CIDR block');
        });
        this.labelKeys(`${p}.match[${j}].sourceLabels`, match?.sourceLabels);
      });
      if (tcpCatchAll === undefined && (matches.length === 0 || matches.some((m) => entries(m).length === 0)))
        tcpCatchAll = i;
      this.weights(`${p}.route`, tcp.route);
    });
  }

  // DestinationRule ------------------------------------------------------------------------------------

  trafficPolicy(path: string, policy: unknown): void {
    const tp = obj(policy);
    if (!tp) return;
    this.policyBlocks(path, tp);
    arr(tp.portLevelSettings).forEach((pl, i) => this.policyBlocks(`${path}.portLevelSettings[${i}]`, obj(pl) ?? {}));
  }

  policyBlocks(path: string, tp: JsonObject): void {
    const lb = obj(tp.loadBalancer);
    const tableSize = num(obj(obj(lb?.consistentHash)?.maglev)?.tableSize);
    if (tableSize !== undefined && Number.isInteger(tableSize) && tableSize >= 1 && !isPrime(tableSize))
      this.error(`${path}.loadBalancer.consistentHash.maglev.tableSize`, 'must be a prime number');
    if (lb?.warmup !== undefined) {
      const simple = str(lb.simple);
      if (
        lb.consistentHash !== undefined ||
        (simple !== undefined && !['ROUND_ROBIN', 'LEAST_REQUEST', 'LEAST_CONN', 'UNSPECIFIED'].includes(simple))
      )
        this.warn(`${path}.loadBalancer.warmup`, 'ignored: warmup applies to ROUND_ROBIN and LEAST_REQUEST only');
    }
    const keepalive = obj(obj(obj(tp.connectionPool)?.tcp)?.tcpKeepalive);
    for (const f of ['time', 'interval'] as const) {
      const v = str(keepalive?.[f]);
      const ns = v === undefined ? undefined : parseDurationNs(v);
      if (ns !== undefined && ns % 1_000_000_000n !== 0n)
        this.warn(
          `${path}.connectionPool.tcp.tcpKeepalive.${f}`,
          `Envoy counts whole seconds: sent as ${ns / 1_000_000_000n}s`,
        );
    }
    this.localityLbSetting(`${path}.loadBalancer.localityLbSetting`, obj(lb?.localityLbSetting), tp.outlierDetection);
    const http = obj(obj(tp.connectionPool)?.http);
    if (http?.useClientProtocol === true && http.h2UpgradePolicy !== undefined && http.h2UpgradePolicy !== 'DEFAULT')
      this.warn(
        `${path}.connectionPool.http.h2UpgradePolicy`,
        'ignored: useClientProtocol keeps the protocol the client spoke (Istio)',
      );
    const od = obj(tp.outlierDetection);
    if (od?.consecutiveLocalOriginFailures !== undefined && od.splitExternalLocalOriginErrors !== true)
      this.warn(
        `${path}.outlierDetection.consecutiveLocalOriginFailures`,
        'ignored unless splitExternalLocalOriginErrors is true (Istio and Envoy)',
      );
    const tls = obj(tp.tls);
    if (tls?.mode === 'DISABLE' && (tls.sni !== undefined || tls.subjectAltNames !== undefined))
      this.warn(`${path}.tls`, 'sni and subjectAltNames are ignored when mode is DISABLE');
    if (tls) this.originationTls(`${path}.tls`, tls);
  }

  /** DestinationRule `tls` certificate fields (TLS origination, control-plane/translate/cluster-tls.ts). */
  originationTls(path: string, tls: JsonObject): void {
    const credentialName = str(tls.credentialName);
    if (credentialName !== undefined && (!DNS_SUBDOMAIN.test(credentialName) || credentialName.length > 253))
      this.error(
        `${path}.credentialName`,
        'must be the name of a Secret (a lower-case DNS subdomain) in the namespace of the client proxies',
      );
    const mode = str(tls.mode);
    if (mode !== 'SIMPLE' && mode !== 'MUTUAL') {
      const set = ORIGINATION_FIELDS.filter((f) => tls[f] !== undefined);
      if (set.length > 0)
        this.warn(path, `${set.join(', ')} ${set.length === 1 ? 'is' : 'are'} ignored unless mode is SIMPLE or MUTUAL`);
    } else if (mode === 'SIMPLE' && (tls.clientCertificate !== undefined || tls.privateKey !== undefined)) {
      this.warn(path, 'clientCertificate and privateKey are ignored when mode is SIMPLE (no client certificate)');
    }
    if (
      (mode === 'SIMPLE' || mode === 'MUTUAL') &&
      tls.caCrl !== undefined &&
      tls.caCertificates === undefined &&
      tls.credentialName === undefined
    )
      this.warn(`${path}.caCrl`, 'ignored without caCertificates (the CRL goes with the CA file it revokes for)');
  }

  /**
   * Istio's validateLocalityLbSetting (pkg/config/validation): distribute weights of one `from` sum to 100,
   * localities within one list do not overlap, failover with failoverPriority must not order by the
   * topology labels (failover orders regions itself), and failover without outlier detection never
   * happens (warning: nothing marks an endpoint unhealthy).
   */
  localityLbSetting(path: string, lb: JsonObject | undefined, outlier: unknown): void {
    if (!lb) return;
    const failover = arr(lb.failover);
    const priority = arr(lb.failoverPriority);
    if (failover.length > 0)
      priority.forEach((label, i) => {
        if (typeof label === 'string' && TOPOLOGY_LOCALITY_LABELS.includes(label))
          this.error(
            `${path}.failoverPriority[${i}]`,
            `must not be the topology label ${label} together with failover (failover orders regions itself)`,
          );
      });
    priority.forEach((label, i) => {
      if (typeof label !== 'string' || label === '') return;
      const eq = label.indexOf('=');
      const key = eq >= 0 ? label.slice(0, eq) : label;
      const value = eq >= 0 ? label.slice(eq + 1) : undefined;
      if (!LABEL_KEY_RE.test(key) || key.slice(key.lastIndexOf('/') + 1).length > 63)
        this.error(`${path}.failoverPriority[${i}]`, 'must be a label key, or key=value');
      else if (value !== undefined && !(LABEL_VALUE_RE.test(value) && value.length <= 63))
        this.error(`${path}.failoverPriority[${i}]`, 'must be a label key, or key=value with a label value');
    });
    const distribute = arr(lb.distribute);
    const froms: [number, string][] = [];
    distribute.forEach((d, i) => {
      const entry = obj(d);
      const from = str(entry?.from);
      if (from !== undefined && LOCALITY_RE.test(from)) froms.push([i, from]);
      const to = entries(entry?.to);
      if (to.length === 0) return;
      if (to.every(([, w]) => Number.isInteger(w) && (w as number) >= 1 && (w as number) <= 100)) {
        const total = to.reduce((sum, [, w]) => sum + (w as number), 0);
        if (total !== 100) this.error(`${path}.distribute[${i}].to`, `weights add up to ${total}, not 100`);
      }
      this.localityOverlaps(
        to.filter(([k]) => LOCALITY_RE.test(k)).map(([k]) => [`${path}.distribute[${i}].to[${k}]`, k]),
      );
    });
    this.localityOverlaps(froms.map(([i, from]) => [`${path}.distribute[${i}].from`, from]));
    if ((failover.length > 0 || priority.length > 0) && outlier === undefined && lb.enabled !== false)
      this.warn(
        path,
        'failover needs outlierDetection in the same policy: without it no endpoint is ever unhealthy, so traffic never fails over (Istio)',
      );
  }

  /** Istio's validateLocalities: no locality of a list may cover another (`us/*` covers `us/z1`). */
  localityOverlaps(list: readonly (readonly [string, string])[]): void {
    const seen: string[] = [];
    for (const [at, locality] of list) {
      const other = seen.find((s) => localitiesOverlap(s, locality));
      if (other !== undefined) this.error(at, `overlaps ${other}, given before`);
      seen.push(locality);
    }
  }

  destinationRule(spec: JsonObject, namespace: string): void {
    this.exportTo('spec.exportTo', spec.exportTo, namespace);
    const selector = obj(spec.workloadSelector);
    if (selector) {
      this.labelKeys('spec.workloadSelector.matchLabels', selector.matchLabels);
      if (entries(selector.matchLabels).length === 0)
        this.warn('spec.workloadSelector', 'selects no labels, so the rule applies to every proxy of its namespace');
      // Istio's validateExportTo for a DestinationRule with a workload selector.
      arr(spec.exportTo).forEach((e, i) => {
        if (e !== '.' && e !== namespace)
          this.error(
            `spec.exportTo[${i}]`,
            'must be . (or the own namespace): a rule with a workloadSelector applies in its namespace only',
          );
      });
    }
    this.trafficPolicy('spec.trafficPolicy', spec.trafficPolicy);
    arr(spec.subsets).forEach((s, i) => {
      const subset = obj(s);
      this.labelKeys(`spec.subsets[${i}].labels`, subset?.labels);
      this.trafficPolicy(`spec.subsets[${i}].trafficPolicy`, subset?.trafficPolicy);
    });
  }

  // PeerAuthentication --------------------------------------------------------------------------------

  peerAuthentication(spec: JsonObject): void {
    const selector = obj(spec.selector);
    this.labelKeys('spec.selector.matchLabels', selector?.matchLabels);
    if (selector && Object.keys(obj(selector.matchLabels) ?? {}).length === 0 && spec.portLevelMtls === undefined)
      this.warn('spec.selector', 'selects no labels, so the policy applies to the whole namespace');
  }

  // AuthorizationPolicy -------------------------------------------------------------------------------

  authorizationPolicy(spec: JsonObject): void {
    const selector = obj(spec.selector);
    this.labelKeys('spec.selector.matchLabels', selector?.matchLabels);
    if (selector && Object.keys(obj(selector.matchLabels) ?? {}).length === 0)
      this.warn('spec.selector', 'selects no labels, so the policy applies to the whole namespace');
    const action = str(spec.action) ?? 'ALLOW';
    const rules = arr(spec.rules);
    if (rules.length === 0 && ['ALLOW', 'DENY', 'AUDIT'].includes(action)) {
      if (action === 'ALLOW')
        this.warn('spec.rules', 'none: this ALLOW policy denies every request to the workloads it selects');
      else this.warn('spec.rules', `none: this ${action} policy matches no request`);
    }
    const cidrs = (path: string, list: unknown) =>
      arr(list).forEach((v, k) => {
        if (typeof v === 'string' && !validCidr(v)) this.error(`${path}[${k}]`, 'must be an IP address or CIDR block');
      });
    const strings = (path: string, list: unknown) =>
      arr(list).forEach((v, k) => {
        if (typeof v === 'string' && v.length > 2 && v.slice(1, -1).includes('*'))
          this.warn(
            `${path}[${k}]`,
            'a * inside a value is matched literally (only a leading or trailing * is a wildcard)',
          );
      });
    rules.forEach((r, i) => {
      const rule = obj(r);
      const p = `spec.rules[${i}]`;
      arr(rule?.from).forEach((f, j) => {
        const source = obj(obj(f)?.source);
        const sp = `${p}.from[${j}].source`;
        for (const field of ['ipBlocks', 'notIpBlocks', 'remoteIpBlocks', 'notRemoteIpBlocks'])
          cidrs(`${sp}.${field}`, source?.[field]);
        for (const field of ['principals', 'notPrincipals', 'namespaces', 'notNamespaces'])
          strings(`${sp}.${field}`, source?.[field]);
      });
      arr(rule?.to).forEach((t, j) => {
        const op = obj(obj(t)?.operation);
        const tp = `${p}.to[${j}].operation`;
        for (const field of ['ports', 'notPorts'])
          arr(op?.[field]).forEach((v, k) => {
            if (typeof v === 'string' && /^[0-9]{1,5}$/.test(v) && (Number(v) < 1 || Number(v) > 65535))
              this.error(`${tp}.${field}[${k}]`, 'must be a port number 1-65535');
          });
        for (const field of ['hosts', 'notHosts', 'methods', 'notMethods', 'paths', 'notPaths'])
          strings(`${tp}.${field}`, op?.[field]);
      });
      arr(rule?.when).forEach((w, j) => {
        const cond = obj(w);
        const key = str(cond?.key);
        const wp = `${p}.when[${j}]`;
        if (key === 'source.ip' || key === 'remote.ip' || key === 'destination.ip') {
          cidrs(`${wp}.values`, cond?.values);
          cidrs(`${wp}.notValues`, cond?.notValues);
        }
        if (key === 'destination.port')
          for (const field of ['values', 'notValues'])
            arr(cond?.[field]).forEach((v, k) => {
              if (typeof v === 'string' && !(/^[0-9]{1,5}$/.test(v) && Number(v) >= 1 && Number(v) <= 65535))
                this.error(`${wp}.${field}[${k}]`, 'must be a port number 1-65535');
            });
      });
    });
  }

  // ServiceEntry -------------------------------------------------------------------------------------

  serviceEntry(spec: JsonObject, namespace: string): void {
    this.exportTo('spec.exportTo', spec.exportTo, namespace);
    const resolution = str(spec.resolution) ?? 'NONE';
    const endpoints = arr(spec.endpoints);
    const hosts = arr(spec.hosts).filter((h): h is string => typeof h === 'string');
    hosts.forEach((h, i) => {
      if (net.isIP(h) !== 0) this.error(`spec.hosts[${i}]`, 'must be a host name, not an IP address (use addresses)');
      // Istio: DNS resolution without endpoints resolves the hosts themselves, which a wildcard cannot be.
      if (h.startsWith('*') && (resolution === 'DNS' || resolution === 'DNS_ROUND_ROBIN') && endpoints.length === 0)
        this.error(`spec.hosts[${i}]`, `a wildcard host needs endpoints with resolution ${resolution}`);
    });
    arr(spec.addresses).forEach((a, i) => {
      if (typeof a === 'string' && !validCidr(a))
        this.error(`spec.addresses[${i}]`, 'must be an IP address or CIDR block');
    });
    const portNames = new Set(
      arr(spec.ports)
        .map((p) => str(obj(p)?.name))
        .filter((n): n is string => n !== undefined),
    );
    endpoints.forEach((e, i) => {
      const endpoint = obj(e);
      if (!endpoint) return;
      const p = `spec.endpoints[${i}]`;
      const address = str(endpoint.address);
      if (address !== undefined) {
        if (resolution === 'STATIC' && net.isIP(address) === 0)
          this.error(`${p}.address`, 'must be an IP address when resolution is STATIC');
        else if (
          net.isIP(address) === 0 &&
          !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\.?$/i.test(address)
        )
          this.error(`${p}.address`, 'must be an IP address or a host name');
      }
      for (const [name] of entries(endpoint.ports)) {
        if (!portNames.has(name)) this.error(`${p}.ports[${name}]`, 'is not the name of a port in spec.ports');
      }
      this.labelKeys(`${p}.labels`, endpoint.labels);
    });
    if (resolution === 'STATIC' && endpoints.length === 0)
      this.warn('spec.endpoints', 'none: with resolution STATIC the service has no endpoints, so calls to it fail');
    if (resolution === 'NONE' && arr(spec.addresses).length === 0) {
      arr(spec.ports).forEach((raw, i) => {
        // The protocol field, else the port name's prefix (as the model decides it).
        const declared = (str(obj(raw)?.protocol) ?? str(obj(raw)?.name)?.split('-', 1)[0] ?? '').toUpperCase();
        if (!['HTTP', 'HTTP2', 'GRPC', 'GRPC-WEB', 'TLS', 'HTTPS'].includes(declared))
          this.warn(
            `spec.ports[${i}]`,
            'a TCP port with resolution NONE and no addresses takes every connection to the port that no other service claims',
          );
      });
    }
  }

  // Sidecar ---------------------------------------------------------------------------------------------

  /** Istio's ValidateSidecar (pilot/pkg/config/validation), with its messages, for the fields Trellis has. */
  sidecar(spec: JsonObject, namespace: string): void {
    this.labelKeys('spec.workloadSelector.labels', obj(spec.workloadSelector)?.labels);
    const egress = arr(spec.egress);
    if (egress.length === 0 && spec.outboundTrafficPolicy === undefined)
      this.error('', 'sidecar: empty configuration provided');
    let catchAll = false;
    const ports = new Set<number>();
    egress.forEach((raw, i) => {
      const listener = obj(raw);
      if (!listener) return;
      const p = `spec.egress[${i}]`;
      const portNumber =
        typeof obj(listener.port)?.number === 'number' ? Number(obj(listener.port)?.number) : undefined;
      if (portNumber === undefined) {
        // Istio: one catch-all egress listener (without port) at most, and it is the last.
        if (catchAll) this.error(p, 'sidecar: egress can have only one listener with empty port');
        else if (i !== egress.length - 1)
          this.error(p, 'sidecar: the egress listener with empty port should be the last listener in the list');
        else catchAll = true;
      } else {
        if (ports.has(portNumber))
          this.error(`${p}.port.number`, 'sidecar: ports on IP bound listeners must be unique');
        ports.add(portNumber);
        this.warn(`${p}.port`, 'the scope is per Service: every port of a Service these hosts match is in it');
      }
      const bind = str(listener.bind);
      if (bind !== undefined && net.isIP(bind) === 0)
        this.error(`${p}.bind`, 'sidecar: bind must be an IP address (Trellis serves no Unix domain sockets)');
      const seen = new Map<string, Set<string>>();
      arr(listener.hosts).forEach((h, j) => {
        if (typeof h !== 'string') return;
        const at = `${p}.hosts[${j}]`;
        const slash = h.indexOf('/');
        if (slash < 0) return this.error(at, 'host must be of form namespace/dnsName');
        const ns = h.slice(0, slash);
        const dns = h.slice(slash + 1);
        if (ns === '' || dns === '')
          return this.error(at, 'config namespace and dnsName in host entry cannot be empty');
        if (ns !== '*' && ns !== '.' && ns !== '~' && !DNS_LABEL.test(ns))
          this.error(at, `invalid namespace value "${ns}" in sidecar`);
        if (!(dns === '*' || EGRESS_DNS_NAME.test(dns)))
          this.error(at, `invalid dnsName "${dns}": must be *, *.suffix or a host name (lower case DNS labels)`);
        else if (dns !== '*' && !dns.includes('.'))
          this.warn(
            at,
            `dnsName "${dns}" is matched as a full name: write the FQDN (${dns}.<namespace>.svc.cluster.local)`,
          );
        // Istio warns about a host listed twice, or after its namespace's `*`.
        const key = ns === '.' ? namespace : ns;
        let names = seen.get(key);
        if (!names) seen.set(key, (names = new Set()));
        if (dns === '*' ? names.size > 0 : names.has(dns) || names.has('*'))
          this.warn(at, `duplicated egress host: ${h}`);
        names.add(dns);
      });
    });
  }

  metadata(meta: unknown): void {
    if (meta === undefined) return this.error('metadata', 'is required');
    const m = obj(meta);
    if (!m) return this.error('metadata', 'must be an object');
    const name = m.name;
    if (name === undefined || name === '') this.error('metadata.name', 'is required');
    else if (typeof name !== 'string') this.error('metadata.name', 'must be a string');
    else if (name.length > 253 || !DNS_SUBDOMAIN.test(name))
      this.error('metadata.name', 'must be a DNS subdomain (lower case letters, digits, - and ., at most 253)');
    const ns = m.namespace;
    if (ns !== undefined && (typeof ns !== 'string' || ns.length > 63 || !DNS_LABEL.test(ns)))
      this.error('metadata.namespace', 'must be a DNS label (lower case letters, digits and -, at most 63)');
  }
}

/** An SNI host is one of the hosts, or falls under a wildcard host (`*.example.com`, `*`). */
function sniCoveredBy(sni: string, host: string): boolean {
  if (sni === host || host === '*') return true;
  if (!host.startsWith('*')) return false;
  const suffix = host.slice(1);
  return sni.endsWith(suffix) && sni.length > suffix.length;
}

/** A match entry that every request satisfies: nothing but a name, uri prefix "/", or uri regex ".*". */
function isCatchAll(m: unknown): boolean {
  const match = obj(m);
  if (!match) return false;
  for (const [k, v] of Object.entries(match)) {
    if (k === 'name' || k === 'ignoreUriCase') continue;
    if (k !== 'uri') return false;
    const uri = obj(v);
    if (!uri || !(uri.prefix === '/' || uri.prefix === '' || uri.regex === '.*')) return false;
  }
  return true;
}

// ---------------------------------------------------------------------------------------------------
// The API

/** True for objects of apiVersion networking.trellis.dev/v1alpha1 and kind VirtualService or DestinationRule. */
export function isRoutingResource(value: unknown): boolean {
  return (
    isObject(value) &&
    value.apiVersion === API_VERSION &&
    (value.kind === 'VirtualService' || value.kind === 'DestinationRule')
  );
}

/** True for every kind of crds/: the routing kinds and security.trellis.dev/v1alpha1 PeerAuthentication and AuthorizationPolicy. */
export function isMeshResource(value: unknown): boolean {
  return (
    isRoutingResource(value) ||
    (isObject(value) && value.apiVersion === API_VERSION && value.kind === 'ServiceEntry') ||
    (isObject(value) && value.apiVersion === API_VERSION && value.kind === 'Sidecar') ||
    (isObject(value) &&
      value.apiVersion === SECURITY_API_VERSION &&
      (value.kind === 'PeerAuthentication' || value.kind === 'AuthorizationPolicy'))
  );
}

/** The kind an object is judged as (VirtualService when it names none of ours). */
function kindOf(o: JsonObject): CrdKind {
  return o.kind === 'DestinationRule' ||
    o.kind === 'PeerAuthentication' ||
    o.kind === 'AuthorizationPolicy' ||
    o.kind === 'ServiceEntry' ||
    o.kind === 'Sidecar'
    ? o.kind
    : 'VirtualService';
}

function dedupeAndSort(issues: ValidationIssue[]): ValidationIssue[] {
  const seen = new Set<string>();
  return issues
    .filter((i) => {
      const k = `${i.severity}\0${i.path}\0${i.message}`;
      if (seen.has(k)) return false;
      seen.add(k);
      return true;
    })
    .sort(
      (a, b) =>
        comparePaths(a.path, b.path) ||
        (a.severity === b.severity ? 0 : a.severity === 'error' ? -1 : 1) ||
        (a.message < b.message ? -1 : a.message > b.message ? 1 : 0),
    );
}

/**
 * The issues of an object by who can find them: `schema` (the OpenAPI schema and metadata: the API server
 * refuses these), `cel` (the CEL rules: the API server refuses these with the same messages, once the
 * schema passes), `beyond` (what only Trellis checks: RE2, prime table sizes, warnings, …). For tests and
 * tools that compare with an API server; validateRoutingResource is the API.
 */
export interface IssuesByLayer {
  readonly schema: ValidationIssue[];
  readonly cel: ValidationIssue[];
  readonly beyond: ValidationIssue[];
}

export function validateByLayer(input: unknown): IssuesByLayer {
  const layers: IssuesByLayer = { schema: [], cel: [], beyond: [] };
  if (!isObject(input)) {
    layers.schema.push({ path: '', message: 'must be an object', severity: 'error' });
    return layers;
  }
  const o = input;
  if (
    o.kind !== 'VirtualService' &&
    o.kind !== 'DestinationRule' &&
    o.kind !== 'PeerAuthentication' &&
    o.kind !== 'AuthorizationPolicy' &&
    o.kind !== 'ServiceEntry' &&
    o.kind !== 'Sidecar'
  )
    layers.schema.push({
      path: 'kind',
      message:
        'must be VirtualService, DestinationRule, PeerAuthentication, AuthorizationPolicy, ServiceEntry or Sidecar',
      severity: 'error',
    });
  const kind = kindOf(o);
  if (o.apiVersion !== apiVersionOf(kind))
    layers.schema.push({ path: 'apiVersion', message: `must be ${apiVersionOf(kind)}`, severity: 'error' });
  if (layers.schema.length > 0) return layers;
  const meta = isObject(o.metadata) ? o.metadata : {};
  const namespace = typeof meta.namespace === 'string' && meta.namespace !== '' ? meta.namespace : DEFAULT_NAMESPACE;

  // Metadata: the schema does not look into it, the API server checks it.
  const meta1 = new Checker();
  meta1.metadata(o.metadata);
  layers.schema.push(...meta1.issues);

  const validate = validatorOf(kind);
  if (!validate(o)) {
    const errs = validate.errors ?? [];
    // An empty string fails minLength and usually the pattern too: one message is enough.
    const empty = new Set(errs.filter((e) => e.keyword === 'minLength').map((e) => e.instancePath));
    for (const e of errs) {
      if (e.keyword === 'pattern' && empty.has(e.instancePath)) continue;
      layers.schema.push(schemaIssue(kind, e, (p) => valueAt(o, p)));
    }
  }
  checkCel(schemaOf(kind), o, '', layers.cel, layers.schema);
  const spec = obj(o.spec);
  if (spec) {
    const checker = new Checker();
    if (kind === 'VirtualService') checker.virtualService(spec, namespace);
    else if (kind === 'DestinationRule') checker.destinationRule(spec, namespace);
    else if (kind === 'PeerAuthentication') checker.peerAuthentication(spec);
    else if (kind === 'ServiceEntry') checker.serviceEntry(spec, namespace);
    else if (kind === 'Sidecar') checker.sidecar(spec, namespace);
    else checker.authorizationPolicy(spec);
    layers.beyond.push(...checker.issues, ...istioIssues(kind, spec, namespace));
  }
  return layers;
}

/**
 * Validates an object (a parsed YAML or JSON document) as a VirtualService, DestinationRule or
 * PeerAuthentication (the kind it names). `origin` is not part of the answer; it is accepted so callers can
 * pass what they pass to formatIssue.
 */
export function validateRoutingResource(input: unknown, _origin?: Origin): ValidationResult {
  const o = isObject(input) ? input : {};
  const kind = kindOf(o);
  const meta = isObject(o.metadata) ? o.metadata : {};
  const namespace = typeof meta.namespace === 'string' && meta.namespace !== '' ? meta.namespace : DEFAULT_NAMESPACE;
  const name = typeof meta.name === 'string' ? meta.name : '';
  const { schema, cel, beyond } = validateByLayer(input);
  const issues = dedupeAndSort([...schema, ...cel, ...beyond]);
  const ok = !issues.some((i) => i.severity === 'error');
  return {
    kind,
    namespace,
    name,
    issues,
    ...(ok ? { resource: canonicalResource(o as unknown as MeshResource) } : {}),
  };
}

/** Where a document came from, for humans: `file.yaml#2` (documents are numbered from 1 here). */
export function formatOrigin(origin?: Origin): string {
  if (!origin || origin.file === undefined) return origin?.document !== undefined ? `#${origin.document + 1}` : '';
  return origin.document !== undefined ? `${origin.file}#${origin.document + 1}` : origin.file;
}

/**
 * One line: `file.yaml#2: VirtualService default/reviews: spec.http[0].route[1].weight: must be >= 0`.
 * Warnings carry `warning: ` before the kind. Documents are numbered from 1 (origin.document is 0-based).
 */
export function formatIssue(result: ValidationResult, issue: ValidationIssue, origin?: Origin): string {
  const where = formatOrigin(origin);
  const object = `${result.kind} ${result.namespace}/${result.name || '(no name)'}`;
  const field = issue.path === '' ? '' : `${issue.path}: `;
  return `${where ? `${where}: ` : ''}${issue.severity === 'warning' ? 'warning: ' : ''}${object}: ${field}${issue.message}`;
}
