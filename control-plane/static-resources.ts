// `trellis control-plane --static-resources FILE`: serves raw Envoy resources written by hand, the same to
// every proxy, and pushes edits live. Useful to try a proxy or a gRPC client against exact config, and the
// way the protocol tests and the xDS benchmark drive the server.
//
// The file is YAML or JSON: `resources:` is a list of resources in proto3 JSON with their `@type`
// (the JSON form of google.protobuf.Any), e.g.
//   resources:
//     - "@type": type.googleapis.com/envoy.config.cluster.v3.Cluster
//       name: echo
//       type: EDS
//       edsClusterConfig: { edsConfig: { ads: {} } }
// Rules (design.md §5.3, one bad object hurts only itself):
// - A resource that does not parse is reported (file, index, type, name, field) and left out; if an
//   earlier version of it (same type and name) was accepted, that version stays.
// - A file that does not parse as a whole, or is missing, is reported and the last good content stays.
// - Every EDS cluster gets a ClusterLoadAssignment: an empty one when the file has none for it.
// Edit the file atomically (write a temporary file and rename it), or a reader may see half a file;
// that is reported and the next complete write is taken.
import { create } from '@bufbuild/protobuf';
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { Cluster_DiscoveryType, type Cluster } from './envoy/gen/envoy/config/cluster/v3/cluster_pb.js';
import { ClusterLoadAssignmentSchema } from './envoy/gen/envoy/config/endpoint/v3/endpoint_pb.js';
import { anyFromJson, resourceName, typeNameOf, TypeUrl, typeUrlOf, unpackAny, type Message } from './envoy/protos.js';
import type { Logger } from './logger.js';
import type { Generator, ResourcesByType, SnapshotSource } from './xds/generator.js';

export interface StaticSnapshot {
  /** Increases with every accepted reload. */
  readonly generation: number;
  readonly resources: ResourcesByType;
  /** Problems found in the last read, each naming the file, the resource and the field. */
  readonly errors: readonly string[];
}

type JsonValue = Parameters<typeof anyFromJson>[0];

function key(typeUrl: string, name: string): string {
  return `${typeUrl}\0${name}`;
}

/**
 * Parses the file's text; returns the resources and the errors, keeping `previous` for bad entries.
 * `memo` maps the JSON text of each resource parsed last time to its message: an unchanged resource keeps
 * the same message object, so a reload that changes one resource re-encodes one resource.
 */
export function parseStaticResources(
  text: string,
  file: string,
  previous: ReadonlyMap<string, Message>,
  memo: ReadonlyMap<string, Message> = new Map(),
): { resources: Map<string, Message>; errors: string[]; memo: Map<string, Message> } {
  // JSON is YAML, but a JSON parser reads a large generated file many times faster.
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    doc = YAML.parse(text);
  }
  const list = Array.isArray(doc) ? doc : (doc as { resources?: unknown } | null)?.resources;
  if (!Array.isArray(list)) throw new Error(`${file}: expected a list under "resources"`);
  const resources = new Map<string, Message>();
  const errors: string[] = [];
  const nextMemo = new Map<string, Message>();
  list.forEach((raw: unknown, index) => {
    const rawObject = typeof raw === 'object' && raw !== null ? (raw as Record<string, unknown>) : {};
    const rawType = typeof rawObject['@type'] === 'string' ? rawObject['@type'] : '';
    const rawName = [rawObject.name, rawObject.clusterName, rawObject.cluster_name].find((v) => typeof v === 'string');
    const label = `${file}: resources[${index}]${rawType ? ` (${typeNameOf(rawType)}${rawName ? ` "${String(rawName)}"` : ''})` : ''}`;
    try {
      if (rawType === '') throw new Error('"@type" is required');
      const rawText = JSON.stringify(raw);
      const message = memo.get(rawText) ?? unpackAny(anyFromJson(raw as JsonValue));
      nextMemo.set(rawText, message);
      const name = resourceName(message);
      if (!name)
        throw new Error(
          message.$typeName === 'envoy.config.endpoint.v3.ClusterLoadAssignment'
            ? 'clusterName is required'
            : 'name is required',
        );
      const k = key(typeUrlOf(message.$typeName), name);
      if (resources.has(k)) throw new Error(`a resource of this type named "${name}" is listed twice`);
      resources.set(k, message);
    } catch (err) {
      errors.push(`${label}: ${err instanceof Error ? err.message : String(err)}`);
      if (typeof rawName === 'string' && rawType !== '') {
        const kept = previous.get(key(rawType, rawName));
        if (kept) resources.set(key(rawType, rawName), kept);
      }
    }
  });
  return { resources, errors, memo: nextMemo };
}

/** The EDS service name of a cluster, or undefined when the cluster is not of type EDS. */
function edsName(cluster: Cluster): string | undefined {
  const d = cluster.clusterDiscoveryType;
  if (d.case !== 'type' || d.value !== Cluster_DiscoveryType.EDS) return undefined;
  return cluster.edsClusterConfig?.serviceName || cluster.name;
}

/** Groups by type (in name order, deterministic) and adds an empty ClusterLoadAssignment per EDS cluster without one. */
export function groupByType(resources: ReadonlyMap<string, Message>): Map<string, Message[]> {
  const byType = new Map<string, Message[]>();
  for (const k of [...resources.keys()].sort()) {
    const message = resources.get(k)!;
    const typeUrl = typeUrlOf(message.$typeName);
    let list = byType.get(typeUrl);
    if (!list) byType.set(typeUrl, (list = []));
    list.push(message);
  }
  const assignments = new Set((byType.get(TypeUrl.ClusterLoadAssignment) ?? []).map((m) => resourceName(m)));
  for (const cluster of (byType.get(TypeUrl.Cluster) ?? []) as Cluster[]) {
    const name = edsName(cluster);
    if (name === undefined || assignments.has(name)) continue;
    assignments.add(name);
    let list = byType.get(TypeUrl.ClusterLoadAssignment);
    if (!list) byType.set(TypeUrl.ClusterLoadAssignment, (list = []));
    list.push(create(ClusterLoadAssignmentSchema, { clusterName: name }));
  }
  return byType;
}

export class StaticResourcesSource implements SnapshotSource<StaticSnapshot> {
  private snapshot: StaticSnapshot = { generation: 0, resources: new Map(), errors: [] };
  private accepted = new Map<string, Message>();
  private memo = new Map<string, Message>();
  private readonly listeners = new Set<() => void>();
  private watcher: fs.FSWatcher | undefined;
  private loaded = false;

  constructor(
    readonly file: string,
    private readonly logger: Logger,
  ) {}

  /** Reads the file once and starts watching it. */
  async start(): Promise<void> {
    this.reload();
    // Watch the folder, not the file: an editor (or an atomic write) replaces the file by a rename, and a
    // watch on the old file would go quiet.
    // Every event re-reads the whole file; bursts are coalesced by the push debouncer downstream.
    const file = path.resolve(this.file);
    const base = path.basename(file);
    this.watcher = fs.watch(path.dirname(file), (_event, changed) => {
      if (changed === base) this.reload();
    });
    this.watcher.on('error', (err) => this.logger.error({ file: this.file, err }, 'watching static resources failed'));
  }

  async stop(): Promise<void> {
    this.watcher?.close();
  }

  current(): StaticSnapshot {
    return this.snapshot;
  }

  ready(): boolean {
    return this.loaded;
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Re-reads the file; on a whole-file error keeps the last good content. */
  reload(): void {
    const file = path.resolve(this.file);
    let parsed: ReturnType<typeof parseStaticResources>;
    try {
      parsed = parseStaticResources(fs.readFileSync(file, 'utf8'), this.file, this.accepted, this.memo);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      this.logger.error(
        { file: this.file, error: message },
        'static resources not reloaded; keeping the last good content',
      );
      this.snapshot = { ...this.snapshot, errors: [message] };
      return;
    }
    for (const error of parsed.errors) this.logger.error({ file: this.file, error }, 'static resource rejected');
    this.accepted = parsed.resources;
    this.memo = parsed.memo;
    this.loaded = true;
    this.snapshot = {
      generation: this.snapshot.generation + 1,
      resources: groupByType(parsed.resources),
      errors: parsed.errors,
    };
    this.logger.info(
      {
        file: this.file,
        generation: this.snapshot.generation,
        resources: parsed.resources.size,
        errors: parsed.errors.length,
      },
      'static resources loaded',
    );
    for (const listener of this.listeners) listener();
  }
}

/** Every proxy gets the same resources: the same arrays, so they are encoded once for all. */
export const staticGenerator: Generator<StaticSnapshot> = {
  generate: (_proxy, snapshot) => snapshot.resources,
};
