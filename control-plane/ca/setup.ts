// Builds the CA service of a control plane from its options: where the CA comes from (plug-in directory,
// Kubernetes Secret, or --state-dir) and how callers authenticate (tokens file or TokenReview).
import type { KubeConfig } from '@kubernetes/client-node';
import type { Registry } from 'prom-client';
import { CertificateAuthority, DEFAULT_TRUST_DOMAIN, type KeyType } from '../../certs/index.js';
import type { Logger } from '../logger.js';
import { TokenReviewAuthenticator, TokensFileAuthenticator, type Authenticator } from './auth.js';
import { CaMetrics } from './metrics.js';
import { ServingIdentity } from './serving-identity.js';
import { CaService } from './service.js';
import { loadOrCreateKubeCa, loadOrCreateLocalCa, loadPluginCaDir, type LoadedCa } from './store.js';

export interface CaOptions {
  /** Local mode: root-cert.pem / root-key.pem here (made on first start). */
  readonly stateDir?: string;
  /** A plug-in CA directory (ca-cert.pem, ca-key.pem, root-cert.pem, cert-chain.pem); wins over the rest. */
  readonly pluginDir?: string;
  /** Local mode authentication: `{token, namespace, serviceAccount}` entries. */
  readonly tokensFile?: string;
  /** Kubernetes mode: Secret trellis-system/trellis-ca and TokenReview (unless tokensFile is given). */
  readonly kubeConfig?: KubeConfig;
  readonly trustDomain?: string;
  /** Key type of a root made on first start; ECDSA P-256 by default. */
  readonly keyType?: KeyType;
  /** An authenticator of the caller's own (tests, embedders); wins over tokensFile/kubeConfig. */
  readonly authenticator?: Authenticator;
  /** Lifetime of the control plane's own serving certificate (renewed at half of it); default 24 h. */
  readonly servingTtlSeconds?: number;
  /**
   * Kubernetes mode: keep ConfigMap `trellis-ca-root-cert` (`root-cert.pem`, the trust bundle) in every
   * namespace (root-publisher.ts); true by default, `false` when something else distributes the root.
   */
  readonly publishRootCert?: boolean;
}

export interface StartedCa {
  readonly authority: CertificateAuthority;
  readonly service: CaService;
  readonly metrics: CaMetrics;
  readonly loaded: LoadedCa;
  /** The control plane's own SVID (`…/ns/trellis-system/sa/trellisd`) for the TLS port; stop() it on close. */
  readonly serving: ServingIdentity;
}

export async function setupCa(options: CaOptions, registry: Registry, logger: Logger): Promise<StartedCa> {
  // The authenticator first: a bad tokens file must not leave a new CA behind.
  const authenticator =
    options.authenticator ??
    (options.tokensFile
      ? TokensFileAuthenticator.fromFile(options.tokensFile)
      : options.kubeConfig
        ? new TokenReviewAuthenticator(options.kubeConfig)
        : undefined);
  if (!authenticator) throw new Error('the CA needs --tokens-file (local mode) or Kubernetes mode (TokenReview)');
  const loaded = options.pluginDir
    ? await loadPluginCaDir(options.pluginDir)
    : options.kubeConfig
      ? await loadOrCreateKubeCa(options.kubeConfig, { keyType: options.keyType })
      : options.stateDir
        ? await loadOrCreateLocalCa(options.stateDir, { keyType: options.keyType, logger })
        : undefined;
  if (!loaded) throw new Error('the CA needs --state-dir (local mode), a plug-in CA directory, or Kubernetes mode');
  const authority = CertificateAuthority.create(loaded.material, options.trustDomain ?? DEFAULT_TRUST_DOMAIN);
  const metrics = new CaMetrics(registry);
  const service = new CaService({ authority, authenticator, metrics, logger });
  const root = loaded.material.root;
  metrics.expiry.set({ certificate: 'root' }, root.notAfter.getTime() / 1000);
  metrics.expiry.set({ certificate: 'signer' }, loaded.material.signer.notAfter.getTime() / 1000);
  const signer = loaded.material.signer;
  const left = signer.notAfter.getTime() - Date.now();
  if (left < (signer.notAfter.getTime() - signer.notBefore.getTime()) * 0.2) {
    logger.warn(
      { signer: signer.subject, notAfter: signer.notAfter.toISOString(), daysLeft: Math.floor(left / 86_400_000) },
      'ca: the signing certificate is in the last 20% of its lifetime; rotate it',
    );
  }
  logger.info(
    {
      source: loaded.source,
      created: loaded.created,
      signer: loaded.material.signer.subject,
      root: root.subject,
      rootNotAfter: root.notAfter.toISOString(),
      roots: loaded.material.roots.length,
      trustDomain: authority.trustDomain,
      authentication: options.authenticator ? 'custom' : options.tokensFile ? 'tokens-file' : 'token-review',
    },
    loaded.created ? 'ca: created a new root CA' : 'ca: loaded',
  );
  const serving = await ServingIdentity.start({ authority, logger, metrics, ttlSeconds: options.servingTtlSeconds });
  return { authority, service, metrics, loaded, serving };
}
