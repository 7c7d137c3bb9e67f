// Kubernetes Secrets as the model keeps them: the TLS credentials a DestinationRule's `tls.credentialName`
// names (README.md "Secrets"). Istio's formats (pilot/pkg/credentials/kube/secrets.go): a certificate and
// key as `cert`/`key` (generic Secret, tried first) or `tls.crt`/`tls.key` (kubernetes.io/tls); a CA as
// `cacert` or `ca.crt`; a CRL as `ca.crl` or `crl`. `data` is base64 (the API server's form); a YAML file
// may use `stringData` instead.
//
// Only Secrets whose name some accepted DestinationRule names (`<credentialName>`, or
// `<credentialName>-cacert`, Istio's separate CA Secret) are kept, in any namespace: a proxy resolves the
// name in its own namespace. Everything else is dropped here, so unrelated Secrets cost no snapshot
// memory and never reach translation.
//
// The private key is held in a `Sensitive`, which serializes as "[redacted]" (JSON, util.inspect, pino),
// so no log line, debug endpoint or describe output built from the snapshot can carry it; `digest` (sha256
// over every kept value) makes the snapshot hash move when any of them changes.
import { createHash, createPrivateKey, X509Certificate } from 'node:crypto';
import { inspect } from 'node:util';
import type { V1Secret } from '@kubernetes/client-node';
import { locationOf, located, type Location, type MeshObject, type Problem } from './objects.js';

/** A secret value: readable through `reveal()` only; "[redacted]" in JSON and util.inspect. */
export class Sensitive {
  readonly #value: string;
  constructor(value: string) {
    this.#value = value;
  }
  reveal(): string {
    return this.#value;
  }
  toJSON(): string {
    return '[redacted]';
  }
  toString(): string {
    return '[redacted]';
  }
  [inspect.custom](): string {
    return '[redacted]';
  }
}

export interface MeshSecret {
  readonly namespace: string;
  readonly name: string;
  /** PEM certificate chain (public), with `privateKey`. */
  readonly certificateChain?: string;
  readonly privateKey?: Sensitive;
  /** PEM CA certificates (public). */
  readonly caCertificate?: string;
  /** PEM certificate revocation list (public), with `caCertificate`. */
  readonly crl?: string;
  /** sha256 of every value above: the snapshot hash covers the key through it. */
  readonly digest: string;
  readonly origin: Location;
}

/** The suffix of Istio's CA-only resource names and Secrets (`<name>-cacert`). */
export const CA_SECRET_SUFFIX = '-cacert';

const CERT_KEYS = [
  ['cert', 'key'],
  ['tls.crt', 'tls.key'],
] as const;
const CA_KEYS = ['cacert', 'ca.crt'] as const;
const CRL_KEYS = ['ca.crl', 'crl'] as const;

type SecretObject = Extract<MeshObject, { kind: 'Secret' }>;

/** The Secret's values as text: `data` base64-decoded, `stringData` as is (it wins, as the API server merges it). */
function secretData(secret: V1Secret | undefined): Map<string, string> {
  const out = new Map<string, string>();
  const data: unknown = secret?.data;
  if (typeof data === 'object' && data !== null) {
    for (const [k, v] of Object.entries(data))
      if (typeof v === 'string') out.set(k, Buffer.from(v, 'base64').toString());
  }
  const stringData: unknown = (secret as { stringData?: unknown } | undefined)?.stringData;
  if (typeof stringData === 'object' && stringData !== null) {
    for (const [k, v] of Object.entries(stringData)) if (typeof v === 'string') out.set(k, v);
  }
  return out;
}

function firstValue(data: ReadonlyMap<string, string>, keys: readonly string[]): string | undefined {
  for (const key of keys) {
    const value = data.get(key);
    if (value !== undefined && value.trim() !== '') return value;
  }
  return undefined;
}

function pemError(what: string, check: () => unknown): string | undefined {
  try {
    check();
    return undefined;
  } catch (err) {
    return `${what} is not valid PEM (${err instanceof Error ? err.message : String(err)})`;
  }
}

/** Why `pem` is not a certificate (every block of it), or undefined. */
function certificateError(what: string, pem: string): string | undefined {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) return `${what} holds no PEM certificate`;
  for (const block of blocks) {
    const error = pemError(what, () => new X509Certificate(block));
    if (error) return error;
  }
  return undefined;
}

/** The names the accepted DestinationRules' `tls.credentialName` fields use, anywhere in them. */
export function credentialNames(specs: readonly unknown[]): Set<string> {
  const names = new Set<string>();
  for (const spec of specs) for (const use of credentialUses(spec)) names.add(use.name);
  return names;
}

/**
 * The Secrets named by `referenced` (a credential name, or one with `-cacert`), sorted by namespace and
 * name. A named Secret with nothing usable, or with values that do not parse, is reported in `problems`
 * (a warning naming the Secret and its keys, never a value) and left out.
 */
export function buildSecrets(
  objects: readonly SecretObject[],
  referenced: ReadonlySet<string>,
  problems: Problem[],
): MeshSecret[] {
  const out: MeshSecret[] = [];
  for (const o of objects) {
    const base = o.name.endsWith(CA_SECRET_SUFFIX) ? o.name.slice(0, -CA_SECRET_SUFFIX.length) : undefined;
    if (!referenced.has(o.name) && !(base !== undefined && referenced.has(base))) continue;
    const origin = locationOf(o.origin);
    const warn = (text: string): void => {
      problems.push({
        severity: 'warning',
        object: { kind: 'Secret', namespace: o.namespace, name: o.name },
        origin,
        message: located(origin, `warning: Secret ${o.namespace}/${o.name}: ${text}`),
      });
    };
    const data = secretData(o.object);
    const pair = CERT_KEYS.find(([c, k]) => firstValue(data, [c]) !== undefined && firstValue(data, [k]) !== undefined);
    let certificateChain = pair ? data.get(pair[0]) : undefined;
    let privateKey = pair ? data.get(pair[1]) : undefined;
    let caCertificate = firstValue(data, CA_KEYS);
    let crl = caCertificate === undefined ? undefined : firstValue(data, CRL_KEYS);
    const errors: string[] = [];
    if (pair && certificateChain !== undefined && privateKey !== undefined) {
      const keyText = privateKey;
      const error = certificateError(pair[0], certificateChain) ?? pemError(pair[1], () => createPrivateKey(keyText));
      if (error) {
        errors.push(error);
        certificateChain = privateKey = undefined;
      }
    }
    if (caCertificate !== undefined) {
      const error = certificateError(CA_KEYS.find((k) => data.has(k)) ?? 'ca.crt', caCertificate);
      if (error) {
        errors.push(error);
        caCertificate = crl = undefined;
      }
    }
    if (crl !== undefined && !/-----BEGIN X509 CRL-----[\s\S]+?-----END X509 CRL-----/.test(crl)) {
      errors.push(`${CRL_KEYS.find((k) => data.has(k)) ?? 'ca.crl'} holds no PEM CRL`);
      crl = undefined;
    }
    if (certificateChain === undefined && caCertificate === undefined) {
      const keys = [...data.keys()].sort();
      warn(
        errors.length > 0
          ? `${errors.join('; ')}; not served`
          : `has neither a certificate and key (tls.crt and tls.key, or cert and key) nor a CA (ca.crt or cacert); found ${keys.length > 0 ? keys.join(', ') : 'no keys'}; not served`,
      );
      continue;
    }
    for (const error of errors) warn(`${error}; that part is not served`);
    const digest = createHash('sha256');
    for (const value of [certificateChain, privateKey, caCertificate, crl]) digest.update(`${value ?? ''}\0`);
    out.push({
      namespace: o.namespace,
      name: o.name,
      ...(certificateChain !== undefined && privateKey !== undefined
        ? { certificateChain, privateKey: new Sensitive(privateKey) }
        : {}),
      ...(caCertificate !== undefined ? { caCertificate } : {}),
      ...(crl !== undefined ? { crl } : {}),
      digest: digest.digest('hex'),
      origin,
    });
  }
  return out.sort((a, b) =>
    a.namespace < b.namespace ? -1 : a.namespace > b.namespace ? 1 : a.name < b.name ? -1 : a.name > b.name ? 1 : 0,
  );
}

/** Every `tls` block of a DestinationRule spec that names a credential: its mode and the name. */
/** credentialUses per spec object: specs are never modified, and most are the same object build after build. */
const usesBySpec = new WeakMap<object, readonly { mode: unknown; name: string }[]>();

function credentialUses(spec: unknown): readonly { mode: unknown; name: string }[] {
  if (typeof spec !== 'object' || spec === null) return [];
  let uses = usesBySpec.get(spec);
  if (!uses) usesBySpec.set(spec, (uses = findCredentialUses(spec)));
  return uses;
}

function findCredentialUses(spec: object): { mode: unknown; name: string }[] {
  const out: { mode: unknown; name: string }[] = [];
  const visit = (value: unknown): void => {
    if (Array.isArray(value)) {
      for (const v of value) visit(v);
      return;
    }
    if (typeof value !== 'object' || value === null) return;
    for (const [k, v] of Object.entries(value)) {
      if (k === 'tls' && typeof v === 'object' && v !== null) {
        const { mode, credentialName } = v as { mode?: unknown; credentialName?: unknown };
        if (typeof credentialName === 'string' && credentialName !== '') out.push({ mode, name: credentialName });
      } else visit(v);
    }
  };
  visit(spec);
  return out;
}

/**
 * Warnings for the DestinationRules whose `credentialName` has no usable Secret in their own namespace (the
 * proxies there would wait for it): none of `<name>`, `<name>-cacert`; or, for MUTUAL, `<name>` without a
 * certificate and key. Proxies of other namespaces resolve the name in theirs, which is not judged here.
 */
export function missingCredentialProblems(
  rules: readonly {
    readonly namespace: string;
    readonly name: string;
    readonly spec: unknown;
    readonly origin: Location;
  }[],
  secrets: ReadonlyMap<string, ReadonlyMap<string, MeshSecret>>,
  problems: Problem[],
): void {
  for (const rule of rules) {
    const seen = new Set<string>();
    for (const { mode, name } of credentialUses(rule.spec)) {
      if (mode !== 'SIMPLE' && mode !== 'MUTUAL') continue;
      const byName = secrets.get(rule.namespace);
      const own = byName?.get(name);
      const missing =
        own === undefined && byName?.get(`${name}${CA_SECRET_SUFFIX}`) === undefined
          ? `no usable Secret ${name} in namespace ${rule.namespace}`
          : mode === 'MUTUAL' && own?.certificateChain === undefined
            ? `Secret ${rule.namespace}/${name} has no usable certificate and key (tls.crt and tls.key, or cert and key) for MUTUAL`
            : undefined;
      if (missing === undefined || seen.has(missing)) continue;
      seen.add(missing);
      problems.push({
        severity: 'warning',
        object: { kind: 'DestinationRule', namespace: rule.namespace, name: rule.name },
        origin: rule.origin,
        message: located(
          rule.origin,
          `warning: DestinationRule ${rule.namespace}/${rule.name}: credentialName ${name}: ${missing}; the TLS of its proxies there waits for it`,
        ),
      });
    }
  }
}

/** The Secrets by namespace, then name. */
export function indexSecrets(secrets: readonly MeshSecret[]): ReadonlyMap<string, ReadonlyMap<string, MeshSecret>> {
  const out = new Map<string, Map<string, MeshSecret>>();
  for (const secret of secrets) {
    let byName = out.get(secret.namespace);
    if (!byName) out.set(secret.namespace, (byName = new Map()));
    byName.set(secret.name, secret);
  }
  return out;
}
