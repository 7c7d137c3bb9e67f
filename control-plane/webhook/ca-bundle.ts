// CaBundleWriter: the control plane keeps the `caBundle` of its own webhook configurations
// (MutatingWebhookConfiguration trellis-sidecar-injector, ValidatingWebhookConfiguration trellis-validator)
// equal to the mesh trust bundle, so the API server trusts the serving certificate the webhook port presents
// (serving-cert.ts). install.yaml and the chart ship them without a caBundle; nobody has to copy one in.
//
// - One informer per configuration, on its name only (field selector `metadata.name`), so the ClusterRole
//   grants get/list/watch/patch on those two names and nothing else.
// - When a configuration is there and one of its webhooks' `clientConfig.caBundle` differs from
//   base64(trust bundle), it is patched (JSON Patch: for each webhook a `test` of its name, then `add` of
//   the caBundle, so a reordered list fails the test and is retried from the newer object). Nothing is
//   written when all are right, so a restart with the same root writes nothing.
// - At start, after setTrustBundle() (a root rotation), and whenever someone else changes the field (a
//   `kubectl apply` or `helm upgrade` that blanks it): the watch brings the change, the bundle is put back.
// - A configuration that does not exist is not an error (installed without the injector, say): nothing is
//   written until it appears. A failed patch is logged and retried with backoff; nothing here throws.
import type { KubeConfig } from '@kubernetes/client-node';
import { Backoff, type BackoffPolicy } from '../../lib/backoff.js';
import { describeKubeError, kubeRequest } from '../kube/http.js';
import { Informer, type KubeObject } from '../kube/informer.js';
import type { Logger } from '../logger.js';
import { silentLogger } from '../logger.js';

export type WebhookConfigurationKind = 'MutatingWebhookConfiguration' | 'ValidatingWebhookConfiguration';

export interface WebhookConfigurationRef {
  readonly kind: WebhookConfigurationKind;
  readonly name: string;
}

/** The two configurations of deploy/install.yaml. */
export const TRELLIS_WEBHOOK_CONFIGURATIONS: readonly WebhookConfigurationRef[] = [
  { kind: 'MutatingWebhookConfiguration', name: 'trellis-sidecar-injector' },
  { kind: 'ValidatingWebhookConfiguration', name: 'trellis-validator' },
];

interface WebhookJson {
  readonly name?: string;
  readonly clientConfig?: { readonly caBundle?: string };
}

export interface WebhookConfigurationJson extends KubeObject {
  readonly webhooks?: readonly WebhookJson[];
}

const COLLECTION: Readonly<Record<WebhookConfigurationKind, string>> = {
  MutatingWebhookConfiguration: '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations',
  ValidatingWebhookConfiguration: '/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations',
};

/** The JSON Patch that sets every webhook's caBundle, or undefined when all already carry it. */
export function caBundlePatch(config: WebhookConfigurationJson, caBundle: string): object[] | undefined {
  const webhooks = config.webhooks ?? [];
  if (webhooks.every((w) => w.clientConfig?.caBundle === caBundle)) return undefined;
  return webhooks.flatMap((w, i) => [
    { op: 'test', path: `/webhooks/${i}/name`, value: w.name },
    { op: 'add', path: `/webhooks/${i}/clientConfig/caBundle`, value: caBundle },
  ]);
}

export interface CaBundleWriterOptions {
  readonly kubeConfig: KubeConfig;
  /** PEM roots: `authority.trustBundle()`. */
  readonly trustBundle: string;
  /** Default TRELLIS_WEBHOOK_CONFIGURATIONS. */
  readonly configurations?: readonly WebhookConfigurationRef[];
  readonly logger?: Logger;
  /** Retries of failed patches and of the informers; 500 ms doubling to 30 s. */
  readonly backoff?: BackoffPolicy;
}

interface Target {
  readonly ref: WebhookConfigurationRef;
  readonly informer: Informer<WebhookConfigurationJson>;
  readonly backoff: Backoff;
  timer?: NodeJS.Timeout;
  running: boolean;
  again: boolean;
}

export interface CaBundleWriterStatus {
  /** Per configuration (`Kind/name`): absent, upToDate or pending. */
  readonly configurations: Readonly<Record<string, 'absent' | 'up-to-date' | 'pending'>>;
  /** Patches sent that succeeded. */
  readonly writes: number;
}

export class CaBundleWriter {
  private readonly logger: Logger;
  private readonly targets: Target[];
  private caBundle: string;
  private writes = 0;
  private stopped = false;
  private readonly inFlight = new Set<Promise<void>>();

  constructor(private readonly o: CaBundleWriterOptions) {
    this.logger = o.logger ?? silentLogger;
    this.caBundle = Buffer.from(o.trustBundle).toString('base64');
    this.targets = (o.configurations ?? TRELLIS_WEBHOOK_CONFIGURATIONS).map((ref) => {
      const informer = new Informer<WebhookConfigurationJson>({
        kubeConfig: o.kubeConfig,
        kind: ref.kind,
        path: COLLECTION[ref.kind],
        query: { fieldSelector: `metadata.name=${ref.name}` },
        logger: this.logger,
        logPrefix: 'webhook-ca-bundle',
        ...(o.backoff ? { backoff: o.backoff } : {}),
      });
      const target: Target = { ref, informer, backoff: new Backoff(o.backoff), running: false, again: false };
      informer.onBatch(() => this.reconcile(target));
      return target;
    });
  }

  start(): void {
    for (const t of this.targets) t.informer.start();
  }

  /** A new trust bundle (root rotation): every configuration is rewritten with it. */
  setTrustBundle(trustBundle: string): void {
    this.caBundle = Buffer.from(trustBundle).toString('base64');
    for (const t of this.targets) {
      t.backoff.reset();
      this.reconcile(t);
    }
  }

  status(): CaBundleWriterStatus {
    const configurations: Record<string, 'absent' | 'up-to-date' | 'pending'> = {};
    for (const t of this.targets) {
      const current = t.informer.get(undefined, t.ref.name);
      configurations[`${t.ref.kind}/${t.ref.name}`] = !current
        ? 'absent'
        : caBundlePatch(current, this.caBundle)
          ? 'pending'
          : 'up-to-date';
    }
    return { configurations, writes: this.writes };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.targets) clearTimeout(t.timer);
    await Promise.all(this.targets.map((t) => t.informer.stop()));
    await Promise.all([...this.inFlight]);
  }

  private reconcile(t: Target): void {
    if (this.stopped || !t.informer.isSynced()) return;
    if (t.running) {
      t.again = true;
      return;
    }
    clearTimeout(t.timer);
    t.running = true;
    const done = this.write(t).finally(() => {
      this.inFlight.delete(done);
      t.running = false;
      if (t.again) {
        t.again = false;
        this.reconcile(t);
      }
    });
    this.inFlight.add(done);
  }

  private async write(t: Target): Promise<void> {
    const current = t.informer.get(undefined, t.ref.name);
    const caBundle = this.caBundle;
    const patch = current ? caBundlePatch(current, caBundle) : undefined;
    if (!current || !patch) return;
    const where = `${t.ref.kind} ${t.ref.name}`;
    try {
      await kubeRequest(this.o.kubeConfig, {
        method: 'PATCH',
        path: `${COLLECTION[t.ref.kind]}/${t.ref.name}`,
        body: patch,
        contentType: 'application/json-patch+json',
      });
      this.writes += 1;
      t.backoff.reset();
      this.logger.info(
        { configuration: where, webhooks: current.webhooks?.length ?? 0 },
        'webhook-ca-bundle: wrote the trust bundle into the caBundle of each webhook',
      );
    } catch (err) {
      if (this.stopped) return;
      const retryInMs = t.backoff.next();
      this.logger[t.backoff.attempts === 1 ? 'warn' : 'debug'](
        { configuration: where, err: describeKubeError(err), retryInMs },
        'webhook-ca-bundle: writing the caBundle failed; retrying',
      );
      t.timer = setTimeout(() => this.reconcile(t), retryInMs);
      t.timer.unref();
    }
  }
}
