// Durations in routing resources. The accepted syntax is a subset of Go's time.ParseDuration (which is what
// the API server's CEL `duration()` parses), chosen so that every string we accept parses the same way in
// Go, in CEL and here:
//
//   one or more <decimal><unit> terms; unit h, m, s or ms; e.g. 10s, 1.5s, 100ms, 1h, 1h30m, 0.25s, 0s
//
// Like Istio, a duration must be a whole number of milliseconds. The pattern says so by limiting the
// digits after the point, so that each term is whole milliseconds: none for ms, at most 3 for s, 4 for m
// and 5 for h (0.001s, 0.0001m = 6ms, 0.00001h = 36ms). No sign, no exponent, no bare number, no "us" or
// "ns". Proto JSON durations written in seconds ("1.500s") fit. Terms add up, as in Go ("1m30s" = 90s).
// (A CEL rule could check whole milliseconds, but converting a duration to a string to compare costs more
// than the API server's CEL budget allows in lists of policies; a pattern costs nothing.)

/** The schema `pattern` of a duration (RE2 and ECMAScript agree on it). */
export const DURATION_PATTERN = '^([0-9]+(\\.[0-9]{1,5})?h|[0-9]+(\\.[0-9]{1,4})?m|[0-9]+(\\.[0-9]{1,3})?s|[0-9]+ms)+$';

/** Whole seconds only (CORS max age). */
export const SECONDS_DURATION_PATTERN = '^([0-9]+(h|m|s))+$';

/** What parses at all (Go syntax restricted to h, m, s, ms); the patterns above are narrower. */
const LOOSE_RE = /^([0-9]+(\.[0-9]+)?(h|m|s|ms))+$/;

const TERM_RE = /([0-9]+)(?:\.([0-9]+))?(ms|h|m|s)/g;

const NS_PER: Record<string, bigint> = {
  ms: 1_000_000n,
  s: 1_000_000_000n,
  m: 60_000_000_000n,
  h: 3_600_000_000_000n,
};

/** Go's time.Duration limit (int64 nanoseconds); longer durations make CEL's `duration()` fail. */
export const MAX_DURATION_NS = 2n ** 63n - 1n;

/**
 * Nanoseconds of a duration string (any number of decimals), or undefined when it does not parse. Fractions are
 * truncated to the nanosecond, like Go's time.ParseDuration. The result may exceed MAX_DURATION_NS.
 */
export function parseDurationNs(value: string): bigint | undefined {
  if (!LOOSE_RE.test(value)) return undefined;
  let total = 0n;
  for (const m of value.matchAll(TERM_RE)) {
    const [, whole = '0', frac = '', unit = 's'] = m;
    const per = NS_PER[unit] ?? 0n;
    const scale = 10n ** BigInt(frac.length);
    total += BigInt(whole) * per + (BigInt(frac || '0') * per) / scale;
  }
  return total;
}

/** Milliseconds of a valid duration (rounded down), or undefined when it does not parse. */
export function durationToMs(value: string): number | undefined {
  const ns = parseDurationNs(value);
  return ns === undefined ? undefined : Number(ns / 1_000_000n);
}

/** Seconds with up to 9 decimals, as protobuf JSON writes a Duration ("1.5s", "0.100s" → "0.1s"). */
export function durationToProtoJson(value: string): string | undefined {
  const ns = parseDurationNs(value);
  if (ns === undefined) return undefined;
  const seconds = ns / 1_000_000_000n;
  const nanos = ns % 1_000_000_000n;
  if (nanos === 0n) return `${seconds}s`;
  return `${seconds}.${nanos.toString().padStart(9, '0').replace(/0+$/, '')}s`;
}
