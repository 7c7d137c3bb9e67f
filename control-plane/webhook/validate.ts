// The validating admission webhook of VirtualService, DestinationRule and PeerAuthentication (issue 4):
// an AdmissionReview v1 handler for `/validate` that runs crds/validator.ts, the very rules of
// `trellis validate`, FileSource and the mesh model. So what the API server stores has passed the checks no schema can express (RE2
// regexes, weights not all zero, prime table sizes, …), and kubectl shows the same lines as
// `trellis validate`:
//
//   admission webhook "validation.trellis.dev" denied the request: VirtualService shop/reviews: spec.http[0]…
//
// - CREATE and UPDATE are judged on `request.object`, its namespace taken from the request (an object
//   sent without one is in the request's namespace). Every error goes into `status.message`, one per
//   line, exactly as `trellis validate` prints them (without a file). `allowed: false`, code 422.
// - Warnings go into `warnings` (kubectl prints each after `Warning: `, so the `warning: ` prefix of
//   `trellis validate` is left out there). They never refuse.
// - DELETE and CONNECT are allowed; so is a request on a subresource (`status`, which the control plane
//   writes) and an update of an object that is being deleted (finalizers must be removable).
// - A request that is not an AdmissionReview v1 gets an HTTP 400 from the server (server.ts); a review
//   whose object is not one of ours is allowed (the registration decides what is sent here).
import { formatIssue, validateRoutingResource } from '../../crds/validator.js';

export const ADMISSION_API_VERSION = 'admission.k8s.io/v1';

/** The part of AdmissionReview v1's request this handler reads. */
export interface AdmissionRequest {
  readonly uid: string;
  readonly kind?: { readonly group?: string; readonly version?: string; readonly kind?: string };
  readonly resource?: { readonly group?: string; readonly version?: string; readonly resource?: string };
  readonly subResource?: string;
  readonly name?: string;
  readonly namespace?: string;
  readonly operation?: 'CREATE' | 'UPDATE' | 'DELETE' | 'CONNECT' | string;
  readonly object?: unknown;
  readonly oldObject?: unknown;
  readonly dryRun?: boolean;
}

export interface AdmissionResponse {
  readonly uid: string;
  readonly allowed: boolean;
  readonly status?: { readonly code: number; readonly reason?: string; readonly message: string };
  readonly warnings?: readonly string[];
}

export interface AdmissionReview {
  readonly apiVersion: typeof ADMISSION_API_VERSION;
  readonly kind: 'AdmissionReview';
  readonly request?: AdmissionRequest;
  readonly response?: AdmissionResponse;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Reads an AdmissionReview v1 with a request; undefined (and why) when the body is not one. */
export function parseAdmissionReview(body: unknown): { request?: AdmissionRequest; error?: string } {
  if (!isRecord(body)) return { error: 'not a JSON object' };
  if (body.kind !== 'AdmissionReview' || body.apiVersion !== ADMISSION_API_VERSION) {
    return { error: `expected an AdmissionReview of ${ADMISSION_API_VERSION}` };
  }
  const request = body.request;
  if (!isRecord(request) || typeof request.uid !== 'string' || request.uid === '') {
    return { error: 'request.uid is missing' };
  }
  return { request: request as unknown as AdmissionRequest };
}

function review(response: AdmissionResponse): AdmissionReview {
  return { apiVersion: ADMISSION_API_VERSION, kind: 'AdmissionReview', response };
}

/** Judges one admission request with crds/validator.ts. */
export function validateAdmission(request: AdmissionRequest): AdmissionReview {
  const allow = (warnings: readonly string[] = []): AdmissionReview =>
    review({ uid: request.uid, allowed: true, ...(warnings.length > 0 ? { warnings } : {}) });
  if (request.operation !== 'CREATE' && request.operation !== 'UPDATE') return allow();
  if (request.subResource) return allow();
  const object = request.object;
  if (!isRecord(object)) return allow();
  const metadata = isRecord(object.metadata) ? object.metadata : {};
  if (request.operation === 'UPDATE' && typeof metadata.deletionTimestamp === 'string') return allow();

  // The namespace of the request: an object may arrive without one (it is the request's).
  const namespace =
    typeof request.namespace === 'string' && request.namespace !== '' ? request.namespace : metadata.namespace;
  const judged =
    typeof namespace === 'string' && namespace !== '' ? { ...object, metadata: { ...metadata, namespace } } : object;
  const result = validateRoutingResource(judged);
  const errors = result.issues.filter((i) => i.severity === 'error').map((i) => formatIssue(result, i));
  const warnings = result.issues
    .filter((i) => i.severity === 'warning')
    .map((i) => formatIssue(result, i).replace(/^warning: /, ''));
  if (errors.length === 0) return allow(warnings);
  return review({
    uid: request.uid,
    allowed: false,
    status: { code: 422, reason: 'Invalid', message: errors.join('\n') },
    ...(warnings.length > 0 ? { warnings } : {}),
  });
}
