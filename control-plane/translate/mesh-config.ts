// `--mesh-config FILE`: the mesh-wide settings (MeshConfig in context.ts) as YAML or JSON. Every field is
// optional and defaults to defaultMeshConfig; an unknown field or a wrong value is an error that names the
// file and the field, so a typo never silently falls back to a default.
//
//   trustDomain: cluster.local          # SPIFFE trust domain of workload identities
//   mtlsMode: PERMISSIVE                # inbound mutual TLS: PERMISSIVE or STRICT
//   connectTimeout: 10s                 # outbound connect_timeout when no DestinationRule sets one
//   outboundTrafficPolicy: ALLOW_ANY    # or REGISTRY_ONLY; Istio's form { mode: REGISTRY_ONLY } too
//   tracing:
//     samplingPercent: 1                # 0..100
//     collector: jaeger.observability:4317   # OTLP/gRPC host:port; tracing is off without it
//   accessLog: false                    # Envoy access logs to stdout
import fs from 'node:fs';
import YAML from 'yaml';
import { DURATION_PATTERN, durationToMs } from '../../crds/duration.js';
import { defaultMeshConfig, type MeshConfig, type MtlsMode, type TracingConfig } from './context.js';

export class MeshConfigError extends Error {
  constructor(readonly errors: readonly string[]) {
    super(errors.join('\n'));
    this.name = 'MeshConfigError';
  }
}

const TOP_FIELDS = ['trustDomain', 'mtlsMode', 'connectTimeout', 'outboundTrafficPolicy', 'tracing', 'accessLog'];
const TRACING_FIELDS = ['samplingPercent', 'collector'];
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

  let tracing: TracingConfig = defaultMeshConfig.tracing;
  if (doc.tracing !== undefined) {
    const raw = doc.tracing;
    if (!isObject(raw)) {
      fail('tracing', `must be a map with samplingPercent and collector, not ${describe(raw)}`);
    } else {
      for (const key of Object.keys(raw)) {
        if (!TRACING_FIELDS.includes(key))
          fail(`tracing.${key}`, `unknown field (known: ${TRACING_FIELDS.join(', ')})`);
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
          fail('tracing.collector', `must be host:port of an OTLP/gRPC collector (jaeger:4317), not ${describe(c)}`);
        } else {
          collector = c as string;
        }
      }
      tracing = collector === undefined ? { samplingPercent } : { samplingPercent, collector };
    }
  }

  let accessLog = defaultMeshConfig.accessLog;
  if (doc.accessLog !== undefined) {
    if (typeof doc.accessLog === 'boolean') accessLog = doc.accessLog;
    else fail('accessLog', `must be true or false, not ${describe(doc.accessLog)}`);
  }

  if (errors.length > 0) throw new MeshConfigError(errors);
  return { trustDomain, mtlsMode, connectTimeout, outboundTrafficPolicy, tracing, accessLog };
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
