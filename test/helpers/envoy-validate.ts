// Envoy's own first-stage validation for the resources Trellis emits, run by the real checker in
// tools/peers/envoy-validate (go-control-plane's generated types: protoc-gen-validate ValidateAll() on
// every resource and on every google.protobuf.Any nested in it, plus Envoy's duration, deprecation and
// unknown-field checks). Build it with `npm run peers`.
//
// When the binary is missing:
//   - validateEnvoyResources() / validateEnvoyJson() reject with EnvoyValidateUnavailableError, so a caller
//     can tell "not built" apart from "invalid";
//   - assertEnvoyValid() fails the test when CI=true (CI must never silently skip Envoy validation) and
//     otherwise logs one line saying `npm run peers` builds it and returns false without asserting
//     anything. A test whose only assertion is assertEnvoyValid() should therefore register itself with
//     `envoyValidateAvailable() ? test : test.skip`, as test/envoy-validate.test.ts does.
import { spawn } from 'node:child_process';
import type { ExecutionContext } from 'ava';
import { toBinary } from '@bufbuild/protobuf';
import type { DescMessage, MessageShape } from '@bufbuild/protobuf';
import { anyPack, AnySchema } from '@bufbuild/protobuf/wkt';
import { peerBinary } from './peer-paths.js';

const BINARY = 'envoy-validate';

/** The verdict on one resource, in input order. */
export interface ValidationResult {
  readonly index: number;
  readonly typeUrl: string;
  /** The resource's `name` (or `cluster_name` for a ClusterLoadAssignment), '' when it has none. */
  readonly name: string;
  /** One line per violated rule: `<path in proto field names>: <Envoy's message naming field and rule>`. */
  readonly errors: readonly string[];
  /** Deprecated fields or enum values in use, opaque metadata of unknown type. */
  readonly warnings: readonly string[];
}

export class EnvoyValidateUnavailableError extends Error {
  constructor() {
    super(`${BINARY} is not built: run \`npm run peers\` to build it (tools/peers/${BINARY})`);
    this.name = 'EnvoyValidateUnavailableError';
  }
}

/** Absolute path of the checker, or undefined when `npm run peers` has not built it. */
export function envoyValidateBinary(): string | undefined {
  return peerBinary(BINARY);
}

export function envoyValidateAvailable(): boolean {
  return envoyValidateBinary() !== undefined;
}

/** Serialized google.protobuf.Any of a message: the bytes an xDS server puts in DiscoveryResponse.resources. */
export function anyBytes<Desc extends DescMessage>(schema: Desc, message: MessageShape<Desc>): Uint8Array {
  return toBinary(AnySchema, anyPack(schema, message));
}

/** Varint length-delimited framing (a protobuf "delimited" stream), the checker's binary input format. */
export function frameDelimited(resources: readonly Uint8Array[]): Buffer {
  const parts: Uint8Array[] = [];
  for (const r of resources) {
    const prefix: number[] = [];
    let n = r.length;
    while (n > 0x7f) {
      prefix.push((n & 0x7f) | 0x80);
      n >>>= 7;
    }
    prefix.push(n);
    parts.push(Uint8Array.from(prefix), r);
  }
  return Buffer.concat(parts);
}

/** Validates serialized google.protobuf.Any resources; resolves with one result per resource, in order. */
export function validateEnvoyResources(resources: readonly Uint8Array[]): Promise<ValidationResult[]> {
  return run([], frameDelimited(resources), resources.length);
}

/** Validates proto3-JSON Any objects (`{"@type": "type.googleapis.com/...", ...}`), e.g. from golden files. */
export function validateEnvoyJson(resources: readonly object[]): Promise<ValidationResult[]> {
  return run(['--json'], Buffer.from(JSON.stringify(resources)), resources.length);
}

/**
 * Fails `t` with every error of every invalid resource (index, type, name, path, rule), else passes one
 * assertion. Resolves true when the resources were checked, false when the checker is not built (see top).
 */
export async function assertEnvoyValid(t: ExecutionContext, resources: readonly Uint8Array[]): Promise<boolean> {
  if (!envoyValidateAvailable()) {
    const message = new EnvoyValidateUnavailableError().message;
    if (process.env.CI === 'true') {
      t.fail(`${message}; CI must not skip Envoy validation`);
      return false;
    }
    t.log(`Envoy validation skipped: ${message}`);
    return false;
  }
  const results = await validateEnvoyResources(resources);
  const invalid = results.filter((r) => r.errors.length > 0);
  for (const r of results) {
    if (r.warnings.length > 0) t.log(`${describe(r)}: ${r.warnings.join('; ')}`);
  }
  if (invalid.length === 0) {
    t.pass();
  } else {
    t.fail(
      `Envoy validation failed for ${invalid.length} of ${results.length} resources:\n` +
        invalid.map((r) => `${describe(r)}\n${r.errors.map((e) => `    ${e}`).join('\n')}`).join('\n'),
    );
  }
  return true;
}

function describe(r: ValidationResult): string {
  const type = r.typeUrl.slice(r.typeUrl.lastIndexOf('/') + 1);
  return `  [${r.index}] ${type}${r.name === '' ? '' : ` "${r.name}"`}`;
}

function run(args: readonly string[], input: Buffer, count: number): Promise<ValidationResult[]> {
  const binary = envoyValidateBinary();
  if (binary === undefined) return Promise.reject(new EnvoyValidateUnavailableError());
  return new Promise((resolve, reject) => {
    const child = spawn(binary, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    // The checker reads all of stdin before it answers; if it dies early, the exit code says why.
    child.stdin.on('error', () => undefined);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      const stderr = Buffer.concat(err).toString('utf8').trim();
      if (code !== 0) {
        reject(new Error(`${BINARY} exited with ${signal ?? code}: ${stderr}`));
        return;
      }
      try {
        const results = parseOutput(Buffer.concat(out).toString('utf8'));
        if (results.length !== count) throw new Error(`expected ${count} results, got ${results.length}`);
        resolve(results);
      } catch (e) {
        reject(new Error(`${BINARY}: unexpected output: ${(e as Error).message}`));
      }
    });
    child.stdin.end(input);
  });
}

function parseOutput(text: string): ValidationResult[] {
  const doc: unknown = JSON.parse(text);
  if (!isRecord(doc) || !Array.isArray(doc.results)) throw new Error('no "results" array');
  return doc.results.map((r: unknown): ValidationResult => {
    if (!isRecord(r) || typeof r.index !== 'number' || typeof r.type_url !== 'string') {
      throw new Error(`bad result ${JSON.stringify(r)}`);
    }
    return {
      index: r.index,
      typeUrl: r.type_url,
      name: typeof r.name === 'string' ? r.name : '',
      errors: strings(r.errors),
      warnings: strings(r.warnings),
    };
  });
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function strings(v: unknown): string[] {
  if (!Array.isArray(v) || !v.every((s): s is string => typeof s === 'string')) throw new Error('not a string array');
  return v;
}
