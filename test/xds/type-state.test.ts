// TypeState keeps what a client holds per type (the last set committed) with per-name entries only where
// they differ. Checked against a model that keeps every name: for seeded random sequences of subscription
// changes, pushes and resyncs, both must ask for the same response every time.
import test from 'ava';
import {
  encodedResource,
  setVersion,
  type EncodedResource,
  type EncodedSet,
} from '../../control-plane/xds/resource-cache.js';
import { sharedSubscription, TypeState } from '../../control-plane/xds/type-state.js';
import { prng } from '../helpers/prng.js';

const TYPE = 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment';
const POOL = ['a', 'b', 'c', 'd', 'e', 'f'];

/** What a client holds, name by name: the straightforward model. */
class Model {
  wildcard = false;
  readonly names = new Set<string>();
  readonly known = new Map<string, string | null>();

  covers(name: string): boolean {
    return this.wildcard || this.names.has(name);
  }
  subscribe(name: string): void {
    if (name === '*') this.wildcard = true;
    else this.names.add(name);
  }
  unsubscribe(name: string): void {
    if (name === '*') this.wildcard = false;
    else if (this.names.delete(name) && !this.wildcard) this.known.delete(name);
  }
  replace(wildcard: boolean, names: readonly string[]): void {
    const next = new Set(names);
    for (const name of [...this.names]) if (!next.has(name)) this.unsubscribe(name);
    for (const name of next) this.subscribe(name);
    if (wildcard !== this.wildcard) {
      this.wildcard = wildcard;
      if (!wildcard) for (const name of [...this.known.keys()]) if (!this.names.has(name)) this.known.delete(name);
    }
  }
  pending(set: EncodedSet, reportMissing: boolean): { updates: string[]; removed: string[] } {
    const candidates = new Set([...set.byName.keys(), ...this.names, ...this.known.keys()]);
    const updates: string[] = [];
    const removed: string[] = [];
    for (const name of [...candidates].sort()) {
      if (!this.covers(name)) continue;
      const resource = set.byName.get(name);
      const held = this.known.get(name);
      if (resource) {
        if (held !== resource.version) updates.push(name);
      } else if (typeof held === 'string' || (held === undefined && reportMissing && this.names.has(name))) {
        removed.push(name);
      }
    }
    return { updates, removed };
  }
  commit(set: EncodedSet, updates: readonly string[], removed: readonly string[], tellAbsent: boolean): void {
    for (const name of updates) this.known.set(name, set.byName.get(name)!.version);
    for (const name of removed) {
      if (tellAbsent && this.names.has(name)) this.known.set(name, null);
      else this.known.delete(name);
    }
  }
}

function randomSet(random: () => number, pool: readonly string[] = POOL): EncodedSet {
  const byName = new Map<string, EncodedResource>();
  for (const name of pool) {
    if (random() < 0.6) {
      const version = `v${Math.floor(random() * 3)}`;
      byName.set(name, encodedResource(TYPE, name, version, new Uint8Array()));
    }
  }
  return { typeUrl: TYPE, byName, version: setVersion(byName) };
}

for (const delta of [true, false]) {
  test(`the per-type bookkeeping asks for what the per-name model asks for (${delta ? 'delta' : 'SotW'})`, (t) => {
    for (let seed = 1; seed <= 300; seed++) {
      const random = prng(seed);
      const state = new TypeState(TYPE);
      const model = new Model();
      const pick = (): string => POOL[Math.floor(random() * POOL.length)]!;
      const trace: string[] = [];
      if (delta && random() < 0.5) {
        for (const name of POOL.slice(0, 3)) {
          state.setHeld(name, 'v1');
          model.known.set(name, 'v1');
        }
        trace.push('initial versions');
      }
      let set = randomSet(random);
      for (let step = 0; step < 40; step++) {
        const r = random();
        if (r < 0.2) {
          const name = random() < 0.15 ? '*' : pick();
          state.subscribe(name);
          model.subscribe(name);
          trace.push(`+${name}`);
        } else if (r < 0.35) {
          const name = random() < 0.15 ? '*' : pick();
          state.unsubscribe(name);
          model.unsubscribe(name);
          trace.push(`-${name}`);
        } else if (r < 0.45) {
          const wildcard = random() < 0.3;
          const names = POOL.filter(() => random() < 0.4);
          // SotW replaces with a shared Set (SotwStream, from the request's wire) or with a list.
          const shared = random() < 0.5;
          if (shared) state.replaceSubscriptionShared(wildcard, sharedSubscription(names));
          else state.replaceSubscription(wildcard, names);
          model.replace(wildcard, names);
          trace.push(`=${shared ? '(shared)' : ''}${wildcard ? '*' : ''}${names.join(',')}`);
        } else if (r < 0.5 && !delta) {
          state.forgetHeld();
          model.known.clear();
          trace.push('resync');
        } else {
          if (random() < 0.7) set = randomSet(random);
          const ours = state.pending(set, delta);
          const expected = model.pending(set, delta);
          const got = { updates: ours.updates.map((u) => u.name), removed: ours.removed };
          t.deepEqual(
            got,
            expected,
            `seed ${seed}: ${trace.join(' ')} push {${[...set.byName.values()].map((e) => `${e.name}@${e.version}`).join(',')}}`,
          );
          if (JSON.stringify(got) !== JSON.stringify(expected)) return;
          const sent = random() < 0.9; // an oversized response is not sent and not committed
          if (sent) {
            state.commit(set, ours.updates, ours.removed, delta);
            model.commit(set, expected.updates, expected.removed, delta);
          }
          trace.push(`push${sent ? '' : '(unsent)'}`);
        }
      }
    }
  });
}

test('equal subscriptions of many streams share one Set, copied before a stream changes its own', (t) => {
  const names = Array.from({ length: 40 }, (_, i) => `outbound|8080||svc-${i}.ns.svc.cluster.local`);
  const a = new TypeState(TYPE);
  const b = new TypeState(TYPE);
  const c = new TypeState(TYPE);
  for (const n of names) a.subscribe(n);
  for (const n of names) b.subscribe(n);
  for (const n of [...names].reverse()) c.subscribe(n); // another order, the same subscription
  for (const s of [a, b, c]) s.shareNames();
  t.is(b.names, a.names);
  t.is(c.names, a.names);
  // A change copies: the others keep the whole subscription.
  a.unsubscribe(names[0]!);
  t.not(a.names, b.names);
  t.false(a.covers(names[0]!));
  t.true(b.covers(names[0]!) && c.covers(names[0]!));
  t.is(b.names.size, 40);
  b.subscribe('outbound|8080||extra.ns.svc.cluster.local');
  t.true(b.covers('outbound|8080||extra.ns.svc.cluster.local'));
  t.false(c.covers('outbound|8080||extra.ns.svc.cluster.local'));
  t.is(c.names.size, 40);
  // A small subscription stays the stream's own.
  const d = new TypeState('type.googleapis.com/envoy.config.route.v3.RouteConfiguration');
  const e = new TypeState('type.googleapis.com/envoy.config.route.v3.RouteConfiguration');
  for (const s of [d, e]) {
    s.subscribe('8080');
    s.shareNames();
  }
  t.not(d.names, e.names);
});

test('streams sharing subscription Sets ask for what per-name models ask for, whatever each one changes', (t) => {
  // Three streams with subscriptions of up to 40 names (shared once they hold 16 or more), each checked
  // against its own model: sharing, copy on write and the memoized first response must not leak between them.
  const pool = Array.from({ length: 40 }, (_, i) => `n${String(i).padStart(2, '0')}`);
  for (let seed = 1; seed <= 200; seed++) {
    const random = prng(seed + 9000);
    const streams = [0, 1, 2].map(() => ({ state: new TypeState(TYPE), model: new Model() }));
    let set = randomSet(random, pool);
    const trace: string[] = [];
    for (let step = 0; step < 60; step++) {
      const k = Math.floor(random() * streams.length);
      const { state, model } = streams[k]!;
      const r = random();
      if (r < 0.15) {
        // A SotW fleet: one of a few big subscriptions, as the shared Set of its wire, for whoever sends it
        // (the change from one to another worked out once per pair of Sets).
        const which = Math.floor(random() * 3);
        const names = pool.filter((_, i) => i % (which + 2) === 0 || i === 39 - which);
        const wildcard = random() < 0.1;
        const changed = state.replaceSubscriptionShared(wildcard, sharedSubscription(names));
        const before = JSON.stringify([model.wildcard, [...model.names].sort()]);
        model.replace(wildcard, names);
        t.is(changed, before !== JSON.stringify([model.wildcard, [...model.names].sort()]), `seed ${seed}: changed`);
        trace.push(`${k}:shared${which}${wildcard ? '*' : ''}`);
      } else if (r < 0.3) {
        // The same big subscription for everyone, the way a fleet connects.
        const names = pool.filter((_, i) => i % 2 === 0 || random() < 0.1);
        for (const name of names) state.subscribe(name);
        for (const name of names) model.subscribe(name);
        state.shareNames();
        trace.push(`${k}:many${names.length}`);
      } else if (r < 0.45) {
        const name = pool[Math.floor(random() * pool.length)]!;
        if (random() < 0.5) {
          state.subscribe(name);
          model.subscribe(name);
          trace.push(`${k}:+${name}`);
        } else {
          state.unsubscribe(name);
          model.unsubscribe(name);
          trace.push(`${k}:-${name}`);
        }
        if (random() < 0.5) state.shareNames();
      } else {
        if (random() < 0.3) set = randomSet(random, pool);
        const ours = state.pending(set, true);
        const expected = model.pending(set, true);
        const got = { updates: ours.updates.map((u) => u.name), removed: [...ours.removed] };
        if (JSON.stringify(got) !== JSON.stringify(expected)) {
          t.deepEqual(got, expected, `seed ${seed}, stream ${k}: ${trace.join(' ')}`);
          return;
        }
        state.commit(set, ours.updates, ours.removed, true);
        model.commit(set, expected.updates, expected.removed, true);
        trace.push(`${k}:push`);
      }
    }
  }
  t.pass();
});
