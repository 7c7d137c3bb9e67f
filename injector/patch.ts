// The RFC 6902 JSON Patch from the original pod to the injected one, computed by fast-json-patch
// (`compare`), never by hand-built paths.
import jsonpatch, { type Operation } from 'fast-json-patch';

export type { Operation } from 'fast-json-patch';

export function podPatch(original: unknown, injected: unknown): Operation[] {
  return jsonpatch.compare(original as object, injected as object);
}

/** Applies `patch` to a copy of `document` (tests, `trellis inject --patch` readers). */
export function applyPodPatch<T>(document: T, patch: readonly Operation[]): T {
  return jsonpatch.applyPatch(structuredClone(document), [...patch], true, true).newDocument;
}
