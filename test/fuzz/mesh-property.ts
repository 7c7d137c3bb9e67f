// The properties of issue 16 over one generated case (arbitraries.ts), through the real pipeline:
// crds/validator.ts → model/build-snapshot.ts → translate/generator.ts (an Envoy sidecar and a proxyless gRPC
// proxy of each kind) → the client's verdicts:
//
//   1. nothing throws (validator, snapshot, translation, encoding);
//   2. every resource generated is accepted by grpc-js-xds's own decoders (gRPC proxies) and, checked in a
//      batch by the caller, by Envoy's validation checker (all proxies);
//   3. the objects the validator rejects change nothing: every proxy's config, as encoded bytes, is the
//      same as when those objects are absent;
//   4. an edit that makes an accepted object invalid changes nothing either: the next snapshot (built with
//      the first as `previous`, as sources do) keeps the object's accepted version, and every proxy's config
//      is byte-identical to before the edit.
//
// checkMeshCase is synchronous and returns what it found; the Envoy checker runs out of process, so the
// bytes it should see are handed back for the caller to batch (fuzz.ts).
import { createHash } from 'node:crypto';
import { encodeAny, packAny, type Message } from '../../control-plane/envoy/protos.js';
import { buildSnapshot } from '../../control-plane/model/build-snapshot.js';
import type { MeshObject } from '../../control-plane/model/objects.js';
import type { MeshSnapshot } from '../../control-plane/model/snapshot.js';
import { meshGenerator } from '../../control-plane/translate/generator.js';
import type { ResourcesByType } from '../../control-plane/xds/generator.js';
import { formatIssue, validateRoutingResource } from '../../crds/validator.js';
import { objectsOf, PROXIES, updatedDrafts, type MeshCase } from './arbitraries.js';
import { grpcXdsRejections } from './grpc-xds-decode.js';

/** A resource for Envoy's checker: its Any bytes and who got it. */
export interface EnvoyCheck {
  readonly bytes: Uint8Array;
  readonly proxy: string;
}

export interface CaseResult {
  /** Broken properties, one line each; [] when the case holds. */
  readonly failures: string[];
  /** Every resource generated for the case, for Envoy's checker. */
  readonly envoy: EnvoyCheck[];
  readonly accepted: number;
  readonly rejected: number;
  /** 1 when the case's edit made an accepted object invalid (property 4 ran), else 0. */
  readonly invalidEdits: number;
}

export function snapshotOf(objects: readonly MeshObject[], previous?: MeshSnapshot): MeshSnapshot {
  return buildSnapshot(objects, { validate: validateRoutingResource, formatIssue, ...(previous ? { previous } : {}) });
}

function encoded(resources: ResourcesByType): Map<string, Uint8Array[]> {
  const out = new Map<string, Uint8Array[]>();
  for (const [typeUrl, messages] of resources)
    out.set(
      typeUrl,
      messages.map((m: Message) => encodeAny(packAny(m))),
    );
  return out;
}

/** Where two configs differ as encoded bytes (type and index), or undefined when they are byte-identical. */
export function configDifference(withObjects: ResourcesByType, without: ResourcesByType): string | undefined {
  return bytesDifference(encoded(withObjects), encoded(without));
}

function bytesDifference(a: Map<string, Uint8Array[]>, b: Map<string, Uint8Array[]>): string | undefined {
  const types = [...new Set([...a.keys(), ...b.keys()])].sort();
  for (const t of types) {
    const x = a.get(t) ?? [];
    const y = b.get(t) ?? [];
    if (x.length !== y.length) return `${t}: ${y.length} resources without the rejected objects, ${x.length} with them`;
    for (let i = 0; i < x.length; i++) {
      if (!Buffer.from(x[i]!).equals(Buffer.from(y[i]!))) return `${t}[${i}] differs`;
    }
  }
  return undefined;
}

function message(e: unknown): string {
  return e instanceof Error ? `${e.name}: ${e.message}\n${e.stack ?? ''}` : String(e);
}

export function checkMeshCase(c: MeshCase): CaseResult {
  const failures: string[] = [];
  const envoy: EnvoyCheck[] = [];
  const objects = objectsOf(c.drafts);
  const acceptedObjects: MeshObject[] = [];
  for (const o of objects) {
    try {
      const verdict = validateRoutingResource(o.object);
      if (verdict.resource) acceptedObjects.push(o);
    } catch (e) {
      failures.push(`validator threw on ${o.kind} ${o.namespace}/${o.name}: ${message(e)}`);
    }
  }
  if (failures.length > 0) return { failures, envoy, accepted: acceptedObjects.length, rejected: 0, invalidEdits: 0 };
  const rejected = objects.length - acceptedObjects.length;

  let withAll: MeshSnapshot;
  let withAccepted: MeshSnapshot;
  try {
    withAll = snapshotOf([...c.mesh, ...objects]);
    withAccepted = rejected > 0 ? snapshotOf([...c.mesh, ...acceptedObjects]) : withAll;
  } catch (e) {
    failures.push(`buildSnapshot threw: ${message(e)}`);
    return { failures, envoy, accepted: acceptedObjects.length, rejected, invalidEdits: 0 };
  }

  // Property 4: the edited object, when the edit is invalid and the object was accepted before it.
  let afterEdit: MeshSnapshot | undefined;
  if (c.update) {
    const i = c.update.index % objects.length;
    const edited = objectsOf(updatedDrafts(c.drafts, c.update));
    try {
      const editedValid = validateRoutingResource(edited[i]!.object).resource !== undefined;
      if (!editedValid && acceptedObjects.includes(objects[i]!))
        afterEdit = snapshotOf([...c.mesh, ...edited], withAll);
    } catch (e) {
      failures.push(
        `validator or buildSnapshot threw on the edit of ${objects[i]!.kind} ${objects[i]!.name}: ${message(e)}`,
      );
    }
  }

  const generator = meshGenerator(c.meshConfig);
  for (const proxy of PROXIES) {
    const who = `${proxy.proxyType} ${proxy.id}`;
    let all: ResourcesByType;
    let bytes: Map<string, Uint8Array[]>;
    try {
      all = generator.generate(proxy, withAll);
      bytes = encoded(all);
    } catch (e) {
      failures.push(`translation threw for ${who}: ${message(e)}`);
      continue;
    }
    for (const list of bytes.values()) for (const b of list) envoy.push({ bytes: b, proxy: who });
    if (proxy.proxyType === 'grpc') {
      for (const r of grpcXdsRejections([...all.values()].flat())) failures.push(`grpc-js-xds rejects (${who}): ${r}`);
    }
    if (rejected > 0) {
      try {
        const difference = bytesDifference(bytes, encoded(generator.generate(proxy, withAccepted)));
        if (difference !== undefined) failures.push(`rejected objects changed the config of ${who}: ${difference}`);
      } catch (e) {
        failures.push(`translation threw for ${who} without the rejected objects: ${message(e)}`);
      }
    }
    if (afterEdit) {
      try {
        const difference = bytesDifference(bytes, encoded(generator.generate(proxy, afterEdit)));
        if (difference !== undefined) failures.push(`an invalid edit changed the config of ${who}: ${difference}`);
      } catch (e) {
        failures.push(`translation threw for ${who} after an invalid edit: ${message(e)}`);
      }
    }
  }
  return { failures, envoy, accepted: acceptedObjects.length, rejected, invalidEdits: afterEdit ? 1 : 0 };
}

/** A short key of a resource's bytes, to send each distinct resource to Envoy's checker once. */
export function resourceKey(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('base64');
}
