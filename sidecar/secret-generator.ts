// What the agent's SDS serves, as a Generator of the xDS engine (control-plane/xds/generator.ts): the
// snapshot is the workload certificate the certificate manager installed last and the certificate files a
// proxy asked for (file-secrets.ts), and every proxy of the pod gets the same Secrets (each stream only
// those it subscribed to), the names the clusters and listeners refer to
// (control-plane/translate/cluster-tls.ts):
//   - `default`: the certificate chain (leaf first) and the private key, inline; version = the serial;
//   - `ROOTCA`: the trust bundle as the validation context's trusted CA; version = a hash of the bundle;
//   - `file-cert:<certificate>~<key>` and `file-root:<ca>`: the files' contents, inline; version = a hash
//     of the contents.
// Versions name the certificate rather than hash the encoded Secret, so Envoy's config dump shows which
// certificate it holds; a renewal that keeps the bundle leaves ROOTCA's version, and nothing is re-sent.
import crypto from 'node:crypto';
import { create } from '@bufbuild/protobuf';
import {
  SecretSchema,
  type Secret,
} from '../control-plane/envoy/gen/envoy/extensions/transport_sockets/tls/v3/secret_pb.js';
import { TypeUrl, type Message } from '../control-plane/envoy/protos.js';
import type { Generator, ResourcesByType, SnapshotSource } from '../control-plane/xds/generator.js';
import { SDS_ROOT_SECRET, SDS_WORKLOAD_SECRET } from '../api/names.js';
import type { WorkloadCertificate } from './certificate-manager.js';
import type { FileSecret } from './file-secrets.js';

/** The names the agent serves; any other name a proxy asks for does not exist. */
export const SERVED_SECRETS: readonly string[] = [SDS_WORKLOAD_SECRET, SDS_ROOT_SECRET];

/** Secret `default`: the chain (leaf first) and the private key, inline. */
export function workloadSecret(certificate: WorkloadCertificate): Secret {
  return create(SecretSchema, {
    name: SDS_WORKLOAD_SECRET,
    type: {
      case: 'tlsCertificate',
      value: {
        certificateChain: { specifier: { case: 'inlineBytes', value: Buffer.from(certificate.certChainPem) } },
        privateKey: { specifier: { case: 'inlineBytes', value: Buffer.from(certificate.privateKeyPem) } },
      },
    },
  });
}

/** Secret `ROOTCA`: the trust bundle as the validation context's trusted CA. */
export function rootSecret(certificate: WorkloadCertificate): Secret {
  return create(SecretSchema, {
    name: SDS_ROOT_SECRET,
    type: {
      case: 'validationContext',
      value: { trustedCa: { specifier: { case: 'inlineBytes', value: Buffer.from(certificate.trustBundlePem) } } },
    },
  });
}

/** A certificate read from files, as its Secret. */
export function fileSecret(secret: FileSecret): Secret {
  return create(SecretSchema, {
    name: secret.name,
    type:
      secret.kind === 'certificate'
        ? {
            case: 'tlsCertificate',
            value: {
              certificateChain: { specifier: { case: 'inlineBytes', value: secret.certificateChain } },
              privateKey: { specifier: { case: 'inlineBytes', value: secret.privateKey } },
            },
          }
        : {
            case: 'validationContext',
            value: { trustedCa: { specifier: { case: 'inlineBytes', value: secret.trustedCa } } },
          },
  });
}

/** The version of `ROOTCA` for a bundle: the first 16 hex digits of its SHA-256. */
export function bundleVersion(trustBundlePem: string): string {
  return crypto.createHash('sha256').update(trustBundlePem).digest('hex').slice(0, 16);
}

const nothing: ResourcesByType = new Map();

/** The agent's SDS snapshot: the workload certificate installed last and the file secrets that can be served. */
export interface AgentSecrets {
  readonly certificate: WorkloadCertificate | undefined;
  /** By name (file-secrets.ts). */
  readonly files: ReadonlyMap<string, FileSecret>;
}

/**
 * The Secrets of the current snapshot, each built once (the same message objects for every stream, so the
 * engine encodes them once): the workload Secret per certificate, `ROOTCA` while the bundle does not
 * change, a file Secret per content read.
 */
export class SecretGenerator implements Generator<AgentSecrets> {
  private readonly versions = new WeakMap<Message, string>();
  private readonly fileSecrets = new WeakMap<FileSecret, Secret>();
  private snapshot: AgentSecrets | undefined;
  private certificate: WorkloadCertificate | undefined;
  private workload: Secret | undefined;
  private resources: ResourcesByType = nothing;
  private root: { readonly version: string; readonly secret: Secret } | undefined;

  generate(_proxy: unknown, secrets: AgentSecrets): ResourcesByType {
    const { certificate } = secrets;
    if (!certificate) return nothing;
    if (secrets === this.snapshot) return this.resources;
    if (certificate !== this.certificate || !this.workload) {
      this.workload = workloadSecret(certificate);
      this.versions.set(this.workload, certificate.serial);
      const version = bundleVersion(certificate.trustBundlePem);
      if (this.root?.version !== version) {
        this.root = { version, secret: rootSecret(certificate) };
        this.versions.set(this.root.secret, version);
      }
      this.certificate = certificate;
    }
    const files = [...secrets.files.values()]
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
      .map((file) => {
        let secret = this.fileSecrets.get(file);
        if (!secret) {
          secret = fileSecret(file);
          this.fileSecrets.set(file, secret);
          this.versions.set(secret, file.version);
        }
        return secret;
      });
    this.resources = new Map([[TypeUrl.Secret, [this.workload, this.root!.secret, ...files]]]);
    this.snapshot = secrets;
    return this.resources;
  }

  /** The version of a Secret this generator made (ResourceCacheOptions.versionOf). */
  readonly versionOf = (message: Message): string | undefined => this.versions.get(message);
}

/** The certificate the agent installed last and the file secrets, as the engine's snapshot source. */
export class CertificateSource implements SnapshotSource<AgentSecrets> {
  private secrets: AgentSecrets = { certificate: undefined, files: new Map() };
  private readonly listeners = new Set<() => void>();

  current(): AgentSecrets {
    return this.secrets;
  }

  ready(): boolean {
    return this.secrets.certificate !== undefined;
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  set(certificate: WorkloadCertificate): void {
    this.publish({ ...this.secrets, certificate });
  }

  setFiles(files: ReadonlyMap<string, FileSecret>): void {
    this.publish({ ...this.secrets, files });
  }

  private publish(secrets: AgentSecrets): void {
    this.secrets = secrets;
    for (const listener of this.listeners) listener();
  }
}
