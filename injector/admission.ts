// `/inject`: the mutating admission webhook (AdmissionReview v1) on the control plane's HTTPS port 15017
// (control-plane/webhook/server.ts). It runs injectPod on the Pod of a CREATE and answers with the JSON
// Patch from the original to the injected pod (patch.ts). It never throws; what it answers:
//
// - not a Pod CREATE (another kind, an UPDATE, a subresource): allowed, no patch;
// - not selected, opted out, already injected, hostNetwork, kube-system/trellis-system: allowed, no patch;
// - injected: allowed with `patchType: JSONPatch`;
// - a Pod that asks for injection but cannot be injected as written (a bad trellis.dev annotation, a
//   container or volume name or a port the sidecar needs): REFUSED, code 422, with
//   `Pod ns/name: field: message`. Letting it through would start it outside the mesh without anyone
//   noticing (mesh-comparison.md §4, "Ignore silently leaves them unmeshed"); the message says what to fix;
// - an unexpected failure inside the injector (a bug): allowed uninjected with a warning kubectl prints,
//   logged and counted (`trellis_injections_total{result="error"}`), as Istio does, so a bug of ours
//   never blocks every pod of the cluster.
import type { Logger } from '../control-plane/logger.js';
import { silentLogger } from '../control-plane/logger.js';
// Types only: the validating webhook's module loads the CRD validator, which injection does not need.
import type { AdmissionRequest, AdmissionResponse, AdmissionReview } from '../control-plane/webhook/validate.js';
import { injectPod, type InjectOptions, type WorkloadMtls } from './inject.js';
import { injectorMetrics, type InjectionResult, type InjectorMetrics } from './metrics.js';
import { podPatch } from './patch.js';
import type { Pod } from './types.js';
import type { Registry } from 'prom-client';

export interface InjectHandlerOptions extends Omit<InjectOptions, 'mtls' | 'kubernetesMinor'> {
  readonly logger?: Logger;
  /** Counts and times every review (injector/metrics.ts). */
  readonly registry?: Registry;
  /** The workload's inbound mTLS from the mesh model (PeerAuthentications); the mesh config's mode otherwise. */
  readonly mtlsFor?: (namespace: string, labels: Readonly<Record<string, string>>) => WorkloadMtls | undefined;
  /** The API server's minor version, when known (native sidecars from 29); default 29. */
  readonly kubernetesMinor?: () => number | undefined;
}

export interface MutatingAdmissionResponse extends AdmissionResponse {
  readonly patchType?: 'JSONPatch';
  /** base64 of the JSON Patch. */
  readonly patch?: string;
}

const ADMISSION_API_VERSION = 'admission.k8s.io/v1';

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function review(response: MutatingAdmissionResponse): AdmissionReview {
  return { apiVersion: ADMISSION_API_VERSION, kind: 'AdmissionReview', response };
}

export function createInjectHandler(
  options: InjectHandlerOptions = {},
): (request: AdmissionRequest) => AdmissionReview {
  const logger = options.logger ?? silentLogger;
  const metrics: InjectorMetrics | undefined = options.registry ? injectorMetrics(options.registry) : undefined;
  return (request) => {
    const started = process.hrtime.bigint();
    let result: InjectionResult = 'skipped';
    try {
      const { answer, outcome } = decide(request, options, logger);
      result = outcome;
      return answer;
    } catch (err) {
      result = 'error';
      logger.error(
        { uid: request.uid, namespace: request.namespace, err },
        'injection failed; pod allowed without a sidecar',
      );
      return review({
        uid: request.uid,
        allowed: true,
        warnings: [`trellis: sidecar not injected: ${(err as Error).message}`],
      });
    } finally {
      metrics?.injections.inc({ result });
      metrics?.duration.observe({ result }, Number(process.hrtime.bigint() - started) / 1e9);
    }
  };
}

function decide(
  request: AdmissionRequest,
  options: InjectHandlerOptions,
  logger: Logger,
): { answer: AdmissionReview; outcome: InjectionResult } {
  const allow = (): AdmissionReview => review({ uid: request.uid, allowed: true });
  const isPod = request.kind?.kind === 'Pod' && (request.kind.group ?? '') === '';
  if (!isPod || request.operation !== 'CREATE' || request.subResource || !isRecord(request.object)) {
    return { answer: allow(), outcome: 'skipped' };
  }
  const pod = request.object as Pod;
  const namespace = request.namespace || pod.metadata?.namespace || 'default';
  const labels = pod.metadata?.labels ?? {};
  const result = injectPod(
    pod,
    { name: namespace },
    {
      ...options,
      mtls: options.mtlsFor?.(namespace, labels),
      kubernetesMinor: options.kubernetesMinor?.(),
    },
  );
  const name = pod.metadata?.name ?? pod.metadata?.generateName ?? '';
  if (result.outcome === 'skipped') {
    logger.debug({ uid: request.uid, pod: `${namespace}/${name}`, reason: result.reason }, 'pod not injected');
    return { answer: allow(), outcome: 'skipped' };
  }
  if (result.outcome === 'error') {
    logger.info(
      { uid: request.uid, pod: `${namespace}/${name}`, error: result.error.message },
      'pod refused: cannot be injected',
    );
    return {
      answer: review({
        uid: request.uid,
        allowed: false,
        status: { code: 422, reason: 'Invalid', message: result.error.message },
      }),
      outcome: 'refused',
    };
  }
  const patch = podPatch(pod, result.pod);
  logger.info(
    { uid: request.uid, pod: `${namespace}/${name}`, template: result.status.template, operations: patch.length },
    'pod injected',
  );
  return {
    answer: review({
      uid: request.uid,
      allowed: true,
      patchType: 'JSONPatch',
      patch: Buffer.from(JSON.stringify(patch)).toString('base64'),
    }),
    outcome: 'injected',
  };
}
