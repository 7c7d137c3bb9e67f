// CEL rules (`x-kubernetes-validations`) evaluated from their own text with a CEL library
// (@marcbachmann/cel-js), so the validator (`trellis validate`, the file source, the webhook) decides what the
// API server decides without an API server. The real kube-apiserver test (test/crds/apiserver.test.ts) is
// the proof that both give the same verdict on every fixture.
//
// The input is what the API server's CEL sees: a null field is absent (the API server drops it before the
// rule runs), so nulls are removed first. A rule that cannot be evaluated on a value (the value is
// malformed below; the schema already reports that) counts as holding, so one mistake gives one message.
import { parse } from '@marcbachmann/cel-js';

/** True when the rule holds for `self`. */
export type CelCheck = (self: unknown) => boolean;

function withoutNulls(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutNulls);
  if (typeof value !== 'object' || value === null) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) if (v !== null && v !== undefined) out[k] = withoutNulls(v);
  return out;
}

/** Compiles a rule once; throws when its text is not CEL (a bug in the schema, caught by the tests). */
export function compileCel(rule: string): CelCheck {
  const program = parse(rule);
  return (self) => {
    let result: unknown;
    try {
      result = program({ self: withoutNulls(self) });
    } catch {
      return true;
    }
    if (typeof result !== 'boolean') throw new Error(`CEL rule ${rule} gave ${typeof result}, not a boolean`);
    return result;
  };
}
