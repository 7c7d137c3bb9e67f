// The neutral baseline of a new Pod's first config in `npm run bench -- xds-mesh`: go-control-plane v0.14.0
// (tools/peers/go-control-plane, the reference server of issue 14) serving the very resources a sidecar of
// the same workload holds from Trellis, read from the control plane's /debug/config, to a new Pod of the
// same Go load generator (tools/peers/xds-load --mesh) with the same HTTP/2 windows. Its time is what a
// server that keeps one snapshot for every node takes to hand over those bytes on this machine, so the
// difference is the part of a new Pod's time that is the control plane's own.
import fs from 'node:fs';
import type { JsonValue } from '@bufbuild/protobuf';
import { anyFromJson } from '../control-plane/envoy/protos.js';
import { startGcp, type GcpCache } from './go-peers.js';
import { GoMeshFleet } from './mesh-load.js';
import type { SimNode } from './mesh-sim.js';
import { sleep } from './xds-fanout.js';

/** The types go-control-plane serves here, by their short names in /debug/config. */
const SERVED_TYPES = ['CDS', 'EDS', 'LDS', 'RDS'] as const;

interface DebugConfig {
  readonly config: Record<string, { readonly resources: readonly { readonly resource: JsonValue }[] } | undefined>;
}

/** A resource in go-control-plane's binary form: the type URL and the message's bytes, base64. */
export interface BinaryResource {
  readonly typeUrl: string;
  readonly binary: string;
}

/** Proto3 JSON of an Any (`{"@type", ...fields}`) in the peer's binary form. */
export function binaryResource(json: JsonValue): BinaryResource & { readonly bytes: number } {
  const any = anyFromJson(json);
  return { typeUrl: any.typeUrl, binary: Buffer.from(any.value).toString('base64'), bytes: any.value.byteLength };
}

/**
 * Writes the CDS, EDS, LDS and RDS resources the connected proxy `proxyId` holds to `file`, in the peer's
 * binary form ({"resources": [{"typeUrl", "binary"}]}: nested typed configs stay bytes). Returns how many
 * resources and message bytes it wrote.
 */
export async function writeProxyConfig(
  monitoringPort: number,
  proxyId: string,
  file: string,
): Promise<{ resources: number; bytes: number }> {
  const res = await fetch(`http://127.0.0.1:${monitoringPort}/debug/config?proxy=${encodeURIComponent(proxyId)}`);
  if (!res.ok) throw new Error(`/debug/config?proxy=${proxyId}: HTTP ${res.status} ${await res.text()}`);
  const { config } = (await res.json()) as DebugConfig;
  const resources: BinaryResource[] = [];
  let bytes = 0;
  for (const type of SERVED_TYPES) {
    const set = config[type];
    if (!set || set.resources.length === 0) throw new Error(`/debug/config?proxy=${proxyId}: no ${type} resources`);
    for (const { resource } of set.resources) {
      const { typeUrl, binary, bytes: size } = binaryResource(resource);
      bytes += size;
      resources.push({ typeUrl, binary });
    }
  }
  fs.writeFileSync(file, JSON.stringify({ resources }));
  return { resources: resources.length, bytes };
}

export interface BaselinePods {
  readonly cache: GcpCache;
  /** Ms from opening each new Pod's stream to its whole first config ACKed, in connect order. */
  readonly ms: number[];
  /** Bytes each new Pod received (xds-load's count of response bytes, averaged). */
  readonly bytesPerPod: number;
}

export interface BaselineOptions {
  readonly gcpBinary: string;
  readonly loadBinary: string;
  /** A file writeProxyConfig wrote. */
  readonly file: string;
  readonly cache: GcpCache;
  /** The new Pods, connected one at a time, `gapMs` apart; one more connects first and is not counted. */
  readonly nodes: readonly SimNode[];
  readonly warmup: SimNode;
  readonly window: number;
  readonly gapMs: number;
  readonly timeoutMs: number;
}

/**
 * Connects `nodes` one at a time to go-control-plane serving `file`. A first Pod is connected and not
 * counted: the SnapshotCache hashes every resource for delta versions on the first delta request, which the
 * Trellis streams' sets had long behind them when their new Pods connected.
 */
export async function baselineNewPods(o: BaselineOptions): Promise<BaselinePods> {
  const { server, xdsPort } = await startGcp(o.gcpBinary, o.file, o.cache);
  const fleet = new GoMeshFleet(o.loadBinary, `127.0.0.1:${xdsPort}`, 1, o.window);
  try {
    await fleet.connect([o.warmup], o.timeoutMs);
    const before = await fleet.totalBytes();
    const ms: number[] = [];
    for (const node of o.nodes) {
      await sleep(o.gapMs);
      const [one] = await fleet.connect([node], o.timeoutMs);
      ms.push(one!);
    }
    if (fleet.errors.length > 0) throw new Error(`go-control-plane baseline: ${fleet.errors.join('; ')}`);
    const bytesPerPod = ((await fleet.totalBytes()) - before) / Math.max(1, o.nodes.length);
    return { cache: o.cache, ms, bytesPerPod };
  } finally {
    await fleet.close();
    await server.stop();
  }
}
