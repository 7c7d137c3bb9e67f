// SDS over ADS: the Kubernetes Secrets a DestinationRule's `tls.credentialName` names, as Envoy `Secret`
// resources (Istio's pilot/pkg/xds/sds.go and its credentials controller), for one proxy.
//
// - Names: `kubernetes://<name>` is the client certificate and key (`tls_certificate`) of Secret
//   `<name>`; `kubernetes://<name>-cacert` the trust (`validation_context`): the CA of Secret
//   `<name>-cacert` if there is one, else the CA of `<name>` (`ca.crt`/`cacert`, with its CRL), else -
//   a Trellis choice where Istio leaves the name unanswered and the cluster waiting - the system roots.
// - Authorization: a proxy gets the Secrets of its own namespace only, and only when that namespace is
//   proven: its ADS stream is bound to its client certificate (the TLS port, xds/authn.ts), as istiod
//   serves credentials only to a `VerifiedIdentity`. A stream on the plaintext port (local mode) gets
//   none. A proxy of namespace A asking for `kubernetes://foo` gets A's `foo`; B's `foo` is never in its
//   config, whatever it asks for.
// - Only Envoy reads them (proxyless gRPC cannot use SDS; cluster-tls.ts).
// - The resource cache sends a proxy only the names it subscribes (SDS is not a wildcard type), so a
//   Secret of its namespace that no cluster of it references is not sent either.
import { create } from '@bufbuild/protobuf';
import { SecretSchema, type Secret } from '../envoy/gen/envoy/extensions/transport_sockets/tls/v3/secret_pb.js';
import { CA_SECRET_SUFFIX, type MeshSecret } from '../model/secrets.js';
import type { MeshSnapshot } from '../model/snapshot.js';
import type { ProxyInfo } from '../xds/node.js';

const PREFIX = 'kubernetes://';

/** The SDS name of a credential's certificate and key. */
export function credentialResourceName(credentialName: string): string {
  return `${PREFIX}${credentialName}`;
}

/** The SDS name of a credential's trust (CA). */
export function credentialCaResourceName(credentialName: string): string {
  return `${PREFIX}${credentialName}${CA_SECRET_SUFFIX}`;
}

function bytes(text: string): { specifier: { case: 'inlineBytes'; value: Uint8Array } } {
  return { specifier: { case: 'inlineBytes', value: new Uint8Array(Buffer.from(text)) } };
}

function certificateSecret(secret: MeshSecret): Secret | undefined {
  if (secret.certificateChain === undefined || secret.privateKey === undefined) return undefined;
  return create(SecretSchema, {
    name: credentialResourceName(secret.name),
    type: {
      case: 'tlsCertificate',
      value: { certificateChain: bytes(secret.certificateChain), privateKey: bytes(secret.privateKey.reveal()) },
    },
  });
}

function trustSecret(name: string, from: MeshSecret | undefined): Secret {
  const value =
    from?.caCertificate !== undefined
      ? { trustedCa: bytes(from.caCertificate), ...(from.crl !== undefined ? { crl: bytes(from.crl) } : {}) }
      : { systemRootCerts: {} };
  return create(SecretSchema, { name, type: { case: 'validationContext', value } });
}

/** The Secret resources of one namespace, sorted by name (pure: the same snapshot gives equal messages). */
export function namespaceSecrets(snapshot: MeshSnapshot, namespace: string): Secret[] {
  const byName = snapshot.index.secrets.get(namespace);
  if (!byName) return [];
  const out = new Map<string, Secret>();
  for (const secret of byName.values()) {
    if (secret.name.endsWith(CA_SECRET_SUFFIX) && secret.caCertificate !== undefined) {
      // Istio's separate CA Secret: `kubernetes://<x>-cacert` is its CA, whatever Secret `<x>` holds.
      const name = credentialResourceName(secret.name);
      out.set(name, trustSecret(name, secret));
      continue;
    }
    const certificate = certificateSecret(secret);
    if (certificate) out.set(certificate.name, certificate);
    if (byName.get(`${secret.name}${CA_SECRET_SUFFIX}`)?.caCertificate === undefined) {
      const name = credentialCaResourceName(secret.name);
      out.set(name, trustSecret(name, secret));
    }
  }
  return [...out.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** Whether `proxy` may be sent the Secrets of its namespace: an Envoy whose namespace its certificate proves. */
export function receivesSecrets(proxy: ProxyInfo): boolean {
  return proxy.proxyType === 'envoy' && proxy.authenticated === true;
}

const cache = new WeakMap<MeshSnapshot, Map<string, readonly Secret[]>>();
/**
 * Per namespace, the Secrets last built and the digests they were built from: a snapshot that changes
 * something else keeps the same messages (encoded once, no push). Namespaces without Secrets are dropped.
 */
const carried = new Map<string, { readonly key: string; readonly secrets: readonly Secret[] }>();

function carriedSecrets(snapshot: MeshSnapshot, namespace: string): readonly Secret[] {
  const byName = snapshot.index.secrets.get(namespace);
  if (!byName) {
    carried.delete(namespace);
    return [];
  }
  const key = [...byName.values()].map((s) => `${s.name}\0${s.digest}`).join('\0');
  const hit = carried.get(namespace);
  if (hit?.key === key) return hit.secrets;
  const secrets = namespaceSecrets(snapshot, namespace);
  carried.set(namespace, { key, secrets });
  return secrets;
}

/**
 * The Secrets `proxy` may be sent (see the top of the file); the same array for every proxy of a
 * namespace and snapshot, so they are encoded once.
 */
export function proxySecrets(snapshot: MeshSnapshot, proxy: ProxyInfo): readonly Secret[] {
  if (!receivesSecrets(proxy)) return [];
  let byNamespace = cache.get(snapshot);
  if (!byNamespace) cache.set(snapshot, (byNamespace = new Map()));
  let secrets = byNamespace.get(proxy.namespace);
  if (!secrets) byNamespace.set(proxy.namespace, (secrets = carriedSecrets(snapshot, proxy.namespace)));
  return secrets;
}
