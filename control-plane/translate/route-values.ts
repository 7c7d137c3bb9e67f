// Small conversions shared by the route and listener builders: durations, percentages, header
// operations and string matchers, from the VirtualService's JSON shapes to Envoy's init shapes.
import type { DescMessage, MessageInitShape } from '@bufbuild/protobuf';
import type { DurationSchema } from '@bufbuild/protobuf/wkt';
import { parseDurationNs } from '../../crds/duration.js';
import type { HeaderOperations, StringMatch } from '../../crds/types.js';
import {
  HeaderValueOption_HeaderAppendAction,
  type HeaderValueOptionSchema,
} from '../envoy/gen/envoy/config/core/v3/base_pb.js';
import type { StringMatcherSchema } from '../envoy/gen/envoy/type/matcher/v3/string_pb.js';
import {
  FractionalPercent_DenominatorType,
  type FractionalPercentSchema,
} from '../envoy/gen/envoy/type/v3/percent_pb.js';

/**
 * The plain-object form of a message's init shape (without the message itself), so that init objects can be
 * spread and composed without TypeScript widening them to a union with the message type.
 */
export type InitOf<Desc extends DescMessage> = Exclude<MessageInitShape<Desc>, { $typeName: string }>;

export type DurationInit = InitOf<typeof DurationSchema>;
export type FractionInit = InitOf<typeof FractionalPercentSchema>;
export type HeaderValueOptionInit = InitOf<typeof HeaderValueOptionSchema>;
export type StringMatcherInit = InitOf<typeof StringMatcherSchema>;

/** `0s`: Envoy reads it as "disabled" where its own default would be a limit (route timeout, idle timeouts). */
export const ZERO_DURATION: DurationInit = { seconds: 0n, nanos: 0 };

/** A validated duration string ("1.5s", "100ms") as a protobuf Duration; undefined when it does not parse. */
export function duration(value: string | undefined): DurationInit | undefined {
  if (value === undefined) return undefined;
  const ns = parseDurationNs(value);
  if (ns === undefined) return undefined;
  return { seconds: ns / 1_000_000_000n, nanos: Number(ns % 1_000_000_000n) };
}

/** True for a duration of more than zero (Envoy's PGV `gt: {}` on fault delays and per-try timeouts). */
export function isPositive(d: DurationInit | undefined): d is DurationInit {
  return d !== undefined && ((d.seconds ?? 0n) > 0n || (d.nanos ?? 0) > 0);
}

/**
 * A VirtualService percentage (0..100, fractions allowed) as Envoy's FractionalPercent over a million, as
 * Istio does (`translatePercentToFractionalPercent`): 0.1% is 1000/1000000. Unset means 100%.
 */
export function millionths(percent: number | undefined): FractionInit {
  const value = percent ?? 100;
  const numerator = Math.min(1_000_000, Math.max(0, Math.round(value * 10_000)));
  return { numerator, denominator: FractionalPercent_DenominatorType.MILLION };
}

export const HUNDRED_PERCENT: FractionInit = { numerator: 100, denominator: FractionalPercent_DenominatorType.HUNDRED };

/** Header names that are the authority: Envoy rewrites them with `host_rewrite_literal`, never as headers. */
export function isAuthorityHeader(name: string): boolean {
  const lower = name.toLowerCase();
  return lower === ':authority' || lower === 'host';
}

function sortedEntries(map: Readonly<Record<string, string>> | undefined): [string, string][] {
  return Object.entries(map ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * `set` → OVERWRITE_IF_EXISTS_OR_ADD, `add` → APPEND_IF_EXISTS_OR_ADD (Istio), sorted by name within each,
 * set first. Pseudo-headers and `host` are left out: the authority is a host rewrite (see authorityOf).
 */
export function headersToAdd(ops: HeaderOperations | undefined): HeaderValueOptionInit[] {
  const out: HeaderValueOptionInit[] = [];
  for (const [key, value] of sortedEntries(ops?.set)) {
    if (isAuthorityHeader(key) || key.startsWith(':')) continue;
    out.push({ header: { key, value }, appendAction: HeaderValueOption_HeaderAppendAction.OVERWRITE_IF_EXISTS_OR_ADD });
  }
  for (const [key, value] of sortedEntries(ops?.add)) {
    if (isAuthorityHeader(key) || key.startsWith(':')) continue;
    out.push({ header: { key, value }, appendAction: HeaderValueOption_HeaderAppendAction.APPEND_IF_EXISTS_OR_ADD });
  }
  return out;
}

/** Envoy refuses to remove pseudo-headers and `host` (PGV), so those are skipped; sorted, unique. */
export function headersToRemove(ops: HeaderOperations | undefined): string[] {
  const names = (ops?.remove ?? []).filter((n) => !n.startsWith(':') && !isAuthorityHeader(n));
  return [...new Set(names)].sort();
}

/** The authority a request header `set`/`add` of `:authority` or `host` asks for. */
export function authorityOf(ops: HeaderOperations | undefined): string | undefined {
  for (const map of [ops?.set, ops?.add]) {
    for (const [key, value] of sortedEntries(map)) if (isAuthorityHeader(key)) return value;
  }
  return undefined;
}

/**
 * A StringMatch as an Envoy StringMatcher (regex as RE2 `safe_regex`, a full match as in Istio); undefined
 * for `{}` (and an empty prefix or regex), which the callers turn into a presence match.
 */
export function stringMatcher(m: StringMatch): StringMatcherInit | undefined {
  if (m.exact !== undefined) return { matchPattern: { case: 'exact', value: m.exact } };
  if (m.prefix !== undefined && m.prefix !== '') return { matchPattern: { case: 'prefix', value: m.prefix } };
  if (m.regex !== undefined && m.regex !== '')
    return { matchPattern: { case: 'safeRegex', value: { regex: m.regex } } };
  return undefined;
}
