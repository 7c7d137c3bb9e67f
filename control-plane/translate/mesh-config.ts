// `--mesh-config FILE`: the mesh-wide settings (MeshConfig in context.ts) as YAML or JSON. Every field is
// optional and defaults to defaultMeshConfig; an unknown field or a wrong value is an error that names the
// file and the field, so a typo never silently falls back to a default.
//
//   trustDomain: cluster.local          # SPIFFE trust domain of workload identities
//   mtlsMode: PERMISSIVE                # inbound mutual TLS: PERMISSIVE or STRICT
//   connectTimeout: 10s                 # outbound connect_timeout when no DestinationRule sets one
//   outboundTrafficPolicy: ALLOW_ANY    # or REGISTRY_ONLY; Istio's form { mode: REGISTRY_ONLY } too
//   tracing:
//     provider: opentelemetry           # or zipkin
//     samplingPercent: 1                # 0..100
//     collector: jaeger.observability:4317   # host:port (OTLP/gRPC, or Zipkin's :9411); off without it
//     customTags:                       # tags on every span: literal, environment or header
//       cluster: { literal: { value: east } }
//       user: { header: { name: x-user, defaultValue: anonymous } }
//   accessLog: false                    # Envoy access logs to stdout
//   scoping: explicit                   # or automatic: each proxy gets the Services AuthorizationPolicies let it call (+ Sidecar egress)
import fs from 'node:fs';
import YAML from 'yaml';
import { DURATION_PATTERN, durationToMs } from '../../crds/duration.js';
import {
  defaultMeshConfig,
  type CustomTag,
  type MeshConfig,
  type MtlsMode,
  type TracingConfig,
  type TracingProvider,
} from './context.js';

export class MeshConfigError extends Error {
  constructor(readonly errors: readonly string[]) {
    super(errors.join('\n'));
    this.name = 'MeshConfigError';
  }
}

const TOP_FIELDS = [
  'trustDomain',
  'mtlsMode',
  'connectTimeout',
  'outboundTrafficPolicy',
  'tracing',
  'accessLog',
  'scoping',
];
const TRACING_FIELDS = ['provider', 'samplingPercent', 'collector', 'customTags'];
const TRACING_PROVIDERS: readonly TracingProvider[] = ['opentelemetry', 'zipkin'];
const CUSTOM_TAG_KINDS = ['literal', 'environment', 'header'];
// Envoy's CustomTag rules: a tag name of at least one character; header names as HTTP allows them.
const TAG_RE = /^[A-Za-z0-9_.:/-]{1,128}$/;
const HEADER_RE = /^:?[A-Za-z0-9!#$%&'*+.^_`|~-]+$/;
const ENV_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
const DURATION_RE = new RegExp(DURATION_PATTERN);
// A DNS name of lowercase labels (what SPIFFE allows in a trust domain, minus the rarely used `_`).
const TRUST_DOMAIN_RE = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/;
const HOST_PORT_RE = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?):([0-9]{1,5})$/;

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describe(value: unknown): string {
  return JSON.stringify(value) ?? String(value);
}

/**
 * Reads a mesh config document (already parsed). `where` prefixes every error (the file name).
 * Throws MeshConfigError listing every problem, each naming its field.
 */
export function parseMeshConfig(doc: unknown, where = 'mesh config'): MeshConfig {
  if (doc === null || doc === undefined) return defaultMeshConfig; // an empty file
  const errors: string[] = [];
  const fail = (field: string, message: string): void => {
    errors.push(`${where}: ${field}: ${message}`);
  };
  if (!isObject(doc)) throw new MeshConfigError([`${where}: must be a map of mesh settings, not ${describe(doc)}`]);
  for (const key of Object.keys(doc)) {
    if (!TOP_FIELDS.includes(key)) fail(key, `unknown field (known: ${TOP_FIELDS.join(', ')})`);
  }

  let trustDomain = defaultMeshConfig.trustDomain;
  if (doc.trustDomain !== undefined) {
    if (typeof doc.trustDomain !== 'string' || !TRUST_DOMAIN_RE.test(doc.trustDomain) || doc.trustDomain.length > 255) {
      fail('trustDomain', `must be a lowercase DNS name such as cluster.local, not ${describe(doc.trustDomain)}`);
    } else {
      trustDomain = doc.trustDomain;
    }
  }

  let mtlsMode: MtlsMode = defaultMeshConfig.mtlsMode;
  if (doc.mtlsMode !== undefined) {
    if (doc.mtlsMode === 'PERMISSIVE' || doc.mtlsMode === 'STRICT') mtlsMode = doc.mtlsMode;
    else fail('mtlsMode', `must be PERMISSIVE or STRICT, not ${describe(doc.mtlsMode)}`);
  }

  let connectTimeout = defaultMeshConfig.connectTimeout;
  if (doc.connectTimeout !== undefined) {
    const value = doc.connectTimeout;
    if (typeof value !== 'string' || !DURATION_RE.test(value)) {
      fail('connectTimeout', `must be a duration such as 10s or 500ms, not ${describe(value)}`);
    } else if ((durationToMs(value) ?? 0) < 1) {
      fail('connectTimeout', 'must be at least 1ms (Envoy rejects a zero connect_timeout)');
    } else {
      connectTimeout = value;
    }
  }

  let outboundTrafficPolicy = defaultMeshConfig.outboundTrafficPolicy;
  if (doc.outboundTrafficPolicy !== undefined) {
    const raw = doc.outboundTrafficPolicy;
    const mode = isObject(raw) ? raw.mode : raw;
    const field = isObject(raw) ? 'outboundTrafficPolicy.mode' : 'outboundTrafficPolicy';
    if (isObject(raw)) {
      for (const key of Object.keys(raw)) if (key !== 'mode') fail(`outboundTrafficPolicy.${key}`, 'unknown field');
    }
    if (mode === 'ALLOW_ANY' || mode === 'REGISTRY_ONLY') outboundTrafficPolicy = mode;
    else fail(field, `must be ALLOW_ANY or REGISTRY_ONLY, not ${describe(mode)}`);
  }

  const tracing: TracingConfig =
    doc.tracing === undefined ? defaultMeshConfig.tracing : parseTracing(doc.tracing, fail);

  let accessLog = defaultMeshConfig.accessLog;
  if (doc.accessLog !== undefined) {
    if (typeof doc.accessLog === 'boolean') accessLog = doc.accessLog;
    else fail('accessLog', `must be true or false, not ${describe(doc.accessLog)}`);
  }

  let scoping: 'explicit' | 'automatic' | undefined;
  if (doc.scoping !== undefined) {
    if (doc.scoping === 'explicit' || doc.scoping === 'automatic') scoping = doc.scoping;
    else fail('scoping', `must be explicit or automatic, not ${describe(doc.scoping)}`);
  }

  if (errors.length > 0) throw new MeshConfigError(errors);
  return {
    trustDomain,
    mtlsMode,
    connectTimeout,
    outboundTrafficPolicy,
    tracing,
    accessLog,
    ...(scoping !== undefined ? { scoping } : {}),
  };
}

/** `tracing`: provider, samplingPercent, collector, customTags (each bad field reported through `fail`). */
function parseTracing(raw: unknown, fail: (field: string, message: string) => void): TracingConfig {
  if (!isObject(raw)) {
    fail('tracing', `must be a map with provider, samplingPercent, collector and customTags, not ${describe(raw)}`);
    return defaultMeshConfig.tracing;
  }
  for (const key of Object.keys(raw)) {
    if (!TRACING_FIELDS.includes(key)) fail(`tracing.${key}`, `unknown field (known: ${TRACING_FIELDS.join(', ')})`);
  }
  let provider: TracingProvider = 'opentelemetry';
  if (raw.provider !== undefined) {
    if (TRACING_PROVIDERS.includes(raw.provider as TracingProvider)) provider = raw.provider as TracingProvider;
    else fail('tracing.provider', `must be ${TRACING_PROVIDERS.join(' or ')}, not ${describe(raw.provider)}`);
  }
  let samplingPercent = defaultMeshConfig.tracing.samplingPercent;
  if (raw.samplingPercent !== undefined) {
    const p = raw.samplingPercent;
    if (typeof p !== 'number' || !Number.isFinite(p) || p < 0 || p > 100) {
      fail('tracing.samplingPercent', `must be a number from 0 to 100, not ${describe(p)}`);
    } else {
      samplingPercent = p;
    }
  }
  let collector: string | undefined;
  if (raw.collector !== undefined) {
    const c = raw.collector;
    const m = typeof c === 'string' ? HOST_PORT_RE.exec(c) : null;
    const port = m ? Number(m[3]) : 0;
    if (!m || port < 1 || port > 65535) {
      const example =
        provider === 'zipkin' ? 'a Zipkin collector (jaeger:9411)' : 'an OTLP/gRPC collector (jaeger:4317)';
      fail('tracing.collector', `must be host:port of ${example}, not ${describe(c)}`);
    } else {
      collector = c as string;
    }
  }
  const customTags: Record<string, CustomTag> = {};
  if (raw.customTags !== undefined) {
    if (!isObject(raw.customTags)) {
      fail(
        'tracing.customTags',
        `must be a map of tag name to literal, environment or header, not ${describe(raw.customTags)}`,
      );
    } else {
      for (const [tag, spec] of Object.entries(raw.customTags)) {
        const parsed = parseCustomTag(`tracing.customTags.${tag}`, tag, spec, fail);
        if (parsed) customTags[tag] = parsed;
      }
    }
  }
  return {
    provider,
    samplingPercent,
    ...(collector === undefined ? {} : { collector }),
    ...(Object.keys(customTags).length > 0 ? { customTags } : {}),
  };
}

/** One of Istio's Telemetry custom tags: `{literal: {value}}`, `{environment: {name, defaultValue}}`, `{header: {name, defaultValue}}`. */
function parseCustomTag(
  field: string,
  tag: string,
  spec: unknown,
  fail: (field: string, message: string) => void,
): CustomTag | undefined {
  if (!TAG_RE.test(tag)) {
    fail(field, 'a tag name is 1 to 128 letters, digits or _ . : / -');
    return undefined;
  }
  const kinds = isObject(spec) ? Object.keys(spec) : [];
  if (!isObject(spec) || kinds.length !== 1 || !CUSTOM_TAG_KINDS.includes(kinds[0]!)) {
    fail(field, `must have exactly one of ${CUSTOM_TAG_KINDS.join(', ')}, not ${describe(spec)}`);
    return undefined;
  }
  const kind = kinds[0]!;
  const body = spec[kind];
  if (!isObject(body)) {
    fail(`${field}.${kind}`, `must be a map, not ${describe(body)}`);
    return undefined;
  }
  const allowed = kind === 'literal' ? ['value'] : ['name', 'defaultValue'];
  let ok = true;
  for (const key of Object.keys(body)) {
    if (!allowed.includes(key)) {
      fail(`${field}.${kind}.${key}`, `unknown field (known: ${allowed.join(', ')})`);
      ok = false;
    }
  }
  for (const key of Object.keys(body)) {
    if (allowed.includes(key) && typeof body[key] !== 'string') {
      fail(`${field}.${kind}.${key}`, `must be a string, not ${describe(body[key])}`);
      ok = false;
    }
  }
  if (!ok) return undefined;
  if (kind === 'literal') {
    if (body.value === undefined) {
      fail(`${field}.literal.value`, 'is required');
      return undefined;
    }
    return { literal: { value: body.value as string } };
  }
  const name = body.name as string | undefined;
  const pattern = kind === 'header' ? HEADER_RE : ENV_RE;
  if (name === undefined || !pattern.test(name)) {
    fail(
      `${field}.${kind}.name`,
      `must be ${kind === 'header' ? 'an HTTP header name' : 'an environment variable name'}, not ${describe(name)}`,
    );
    return undefined;
  }
  const defaultValue = body.defaultValue as string | undefined;
  const value = { name, ...(defaultValue === undefined ? {} : { defaultValue }) };
  return kind === 'header' ? { header: value } : { environment: value };
}

/** Reads `--mesh-config FILE` (YAML or JSON). Throws MeshConfigError naming the file and each bad field. */
export function readMeshConfigFile(file: string): MeshConfig {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new MeshConfigError([`${file}: cannot read: ${(err as Error).message}`]);
  }
  let doc: unknown;
  try {
    doc = YAML.parse(text);
  } catch (err) {
    throw new MeshConfigError([`${file}: does not parse: ${(err as Error).message.split('\n', 1)[0]}`]);
  }
  return parseMeshConfig(doc, file);
}
