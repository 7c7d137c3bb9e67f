// The canonical form of a valid VirtualService or DestinationRule: the spellings Istio accepts and means
// the same by, written one way, so the model and the translators read one form (crds/validator.ts returns
// it as `resource`). What it changes:
//
// - host names (VirtualService hosts, destinations, mirrors, DestinationRule host) in lower case: DNS names
//   are case-insensitive, and Envoy and gRPC compare domains and cluster names as written;
// - header names of matches (`headers`, `withoutHeaders`) in lower case: Envoy and gRPC see them so;
// - `port: 0` of a match and of a redirect, and `redirectCode: 0`, removed (Istio: 0 is unset);
// - the deprecated `consistentHash.minimumRingSize` moved to `consistentHash.ringHash.minimumRingSize`
//   (removed when 0).
//
// The input is not changed; nothing else is touched. Pure; imports nothing.

type Json = Record<string, unknown>;

const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

function lowerHost(o: unknown, field = 'host'): void {
  if (isObj(o) && typeof o[field] === 'string') o[field] = (o[field] as string).toLowerCase();
}

function dropZero(o: unknown, field: string): void {
  if (isObj(o) && o[field] === 0) delete o[field];
}

function lowerKeys(o: Json, field: string): void {
  const map = o[field];
  if (!isObj(map)) return;
  o[field] = Object.fromEntries(Object.entries(map).map(([k, v]) => [k.toLowerCase(), v]));
}

function canonicalVirtualService(spec: Json): void {
  if (Array.isArray(spec.hosts))
    spec.hosts = spec.hosts.map((h: unknown) => (typeof h === 'string' ? h.toLowerCase() : h));
  for (const raw of arr(spec.http)) {
    if (!isObj(raw)) continue;
    for (const m of arr(raw.match)) {
      if (!isObj(m)) continue;
      lowerKeys(m, 'headers');
      lowerKeys(m, 'withoutHeaders');
      dropZero(m, 'port');
    }
    for (const r of arr(raw.route)) if (isObj(r)) lowerHost(r.destination);
    lowerHost(raw.mirror);
    for (const m of arr(raw.mirrors)) if (isObj(m)) lowerHost(m.destination);
    dropZero(raw.redirect, 'port');
    dropZero(raw.redirect, 'redirectCode');
  }
  for (const kind of ['tcp', 'tls'] as const)
    for (const raw of arr(spec[kind])) {
      if (!isObj(raw)) continue;
      for (const m of arr(raw.match)) dropZero(m, 'port');
      for (const r of arr(raw.route)) if (isObj(r)) lowerHost(r.destination);
    }
}

function canonicalPolicy(policy: unknown): void {
  if (!isObj(policy)) return;
  for (const block of [policy, ...arr(policy.portLevelSettings)]) {
    if (!isObj(block) || !isObj(block.loadBalancer)) continue;
    const hash = block.loadBalancer.consistentHash;
    if (!isObj(hash) || hash.minimumRingSize === undefined) continue;
    const size = hash.minimumRingSize;
    delete hash.minimumRingSize;
    if (typeof size === 'number' && size > 0 && hash.ringHash === undefined && hash.maglev === undefined)
      hash.ringHash = { minimumRingSize: size };
  }
}

function canonicalDestinationRule(spec: Json): void {
  lowerHost(spec);
  canonicalPolicy(spec.trafficPolicy);
  for (const s of arr(spec.subsets)) if (isObj(s)) canonicalPolicy(s.trafficPolicy);
}

/** A copy of `object` in canonical form (see above); objects of other kinds are copied unchanged. */
export function canonicalResource<T>(object: T): T {
  const copy = structuredClone(object);
  if (!isObj(copy) || !isObj(copy.spec)) return copy;
  if (copy.kind === 'VirtualService') canonicalVirtualService(copy.spec);
  else if (copy.kind === 'DestinationRule') canonicalDestinationRule(copy.spec);
  return copy;
}
