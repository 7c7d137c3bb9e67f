// What the agent's SDS serves, as a Generator of the xDS engine (control-plane/xds/generator.ts): the
// snapshot is the workload certificate the certificate manager installed last, and every proxy of the pod
// gets the same two Secrets, the names every cluster and listener refers to
// (control-plane/translate/cluster-tls.ts):
//   - `default`: the certificate chain (leaf first) and the private key, inline; version = the serial;
//   - `ROOTCA`: the trust bundle as the validation context's trusted CA; version = a hash of the bundle.
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

/** The version of `ROOTCA` for a bundle: the first 16 hex digits of its SHA-256. */
export function bundleVersion(trustBundlePem: string): string {
  return crypto.createHash('sha256').update(trustBundlePem).digest('hex').slice(0, 16);
}

const nothing: ResourcesByType = new Map();

/**
 * The two Secrets of the current certificate, built once per certificate (the same message objects for
 * every stream, so the engine encodes them once) and kept while the bundle does not change.
 */
export class SecretGenerator implements Generator<WorkloadCertificate | undefined> {
  private readonly versions = new WeakMap<Message, string>();
  private certificate: WorkloadCertificate | undefined;
  private resources: ResourcesByType = nothing;
  private root: { readonly version: string; readonly secret: Secret } | undefined;

  generate(_proxy: unknown, certificate: WorkloadCertificate | undefined): ResourcesByType {
    if (!certificate) return nothing;
    if (certificate !== this.certificate) {
      const workload = workloadSecret(certificate);
      this.versions.set(workload, certificate.serial);
      const version = bundleVersion(certificate.trustBundlePem);
      if (this.root?.version !== version) {
        this.root = { version, secret: rootSecret(certificate) };
        this.versions.set(this.root.secret, version);
      }
      this.resources = new Map([[TypeUrl.Secret, [workload, this.root.secret]]]);
      this.certificate = certificate;
    }
    return this.resources;
  }

  /** The version of a Secret this generator made (ResourceCacheOptions.versionOf). */
  readonly versionOf = (message: Message): string | undefined => this.versions.get(message);
}

/** The certificate the agent installed last, as the engine's snapshot source. */
export class CertificateSource implements SnapshotSource<WorkloadCertificate | undefined> {
  private certificate: WorkloadCertificate | undefined;
  private readonly listeners = new Set<() => void>();

  current(): WorkloadCertificate | undefined {
    return this.certificate;
  }

  ready(): boolean {
    return this.certificate !== undefined;
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  set(certificate: WorkloadCertificate): void {
    this.certificate = certificate;
    for (const listener of this.listeners) listener();
  }
}
