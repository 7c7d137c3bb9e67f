// Shared by the tests of test/kube/: the CRDs on the cluster, a KubeSource on it, waiting for snapshots.
import fs from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import { CRD_FILES, crdsDir } from '../../crds/generate.js';
import { formatIssue, validateRoutingResource } from '../../crds/validator.js';
import type { MeshSnapshot, ResourceStatus } from '../../control-plane/model/snapshot.js';
import { KubeSource, type KubeSourceOptions } from '../../control-plane/sources/kube-source.js';
import type { Cluster } from '../helpers/cluster.js';
import { within } from '../helpers/wait.js';
import { crdsEstablished } from '../helpers/crds-established.js';

const installed = new WeakMap<Cluster, Promise<void>>();

/** Applies crds/*.yaml server-side once per cluster and waits until every CRD is Established. */
export function installCrds(cluster: Cluster): Promise<void> {
  let done = installed.get(cluster);
  if (!done) {
    done = (async () => {
      for (const file of Object.values(CRD_FILES)) {
        await cluster.kubectl(['apply', '--server-side', '--field-manager=trellis-test', '-f', '-'], {
          input: fs.readFileSync(path.join(crdsDir, file), 'utf8'),
        });
      }
      await crdsEstablished(cluster, [
        'virtualservices.networking.trellis.dev',
        'destinationrules.networking.trellis.dev',
        'peerauthentications.security.trellis.dev',
        'serviceentries.networking.trellis.dev',
      ]);
    })();
    installed.set(cluster, done);
  }
  return done;
}

/** A pino logger that keeps every record (for assertions on what was logged). */
export function recordingLogger(): { logger: Logger; records: Record<string, unknown>[] } {
  const records: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line.trim() !== '') records.push(JSON.parse(line) as Record<string, unknown>);
      }
      cb();
    },
  });
  return { logger: pino({ level: process.env.TRELLIS_TEST_LOG ?? 'debug', base: undefined }, sink), records };
}

/** A KubeSource on the cluster with the real validator, started and synced (30 s deadline). */
export async function startKubeSource(cluster: Cluster, options: Partial<KubeSourceOptions> = {}): Promise<KubeSource> {
  const source = new KubeSource({
    kubeConfig: cluster.kubeConfig,
    validate: validateRoutingResource,
    formatIssue,
    ...options,
  });
  await within('the first full sync of KubeSource', source.start(), 30_000);
  return source;
}

/**
 * Resolves with the first snapshot (the current one, or one published later) for which `probe` returns
 * something; rejects after `timeoutMs` naming `what` and the last snapshot's version.
 */
export function nextSnapshot<T>(
  source: KubeSource,
  what: string,
  probe: (snapshot: MeshSnapshot) => T | undefined | false,
  timeoutMs = 15_000,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let unsubscribe = (): void => undefined;
    const check = (): boolean => {
      const value = probe(source.current());
      if (value === undefined || value === false) return false;
      clearTimeout(timer);
      unsubscribe();
      resolve(value);
      return true;
    };
    const timer = setTimeout(() => {
      unsubscribe();
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what} (snapshot v${source.current().version})`));
    }, timeoutMs);
    if (check()) return;
    unsubscribe = source.onChange(() => void check());
  });
}

export function statusOf(
  snapshot: MeshSnapshot,
  kind: ResourceStatus['kind'],
  namespace: string,
  name: string,
): ResourceStatus | undefined {
  return snapshot.statuses.find((s) => s.kind === kind && s.namespace === namespace && s.name === name);
}

/** `kubectl apply -f -` of YAML text in a namespace. */
export async function apply(cluster: Cluster, namespace: string, yaml: string): Promise<string> {
  const { stdout } = await cluster.kubectl(['apply', '-n', namespace, '-f', '-'], { input: yaml });
  return stdout;
}

export interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
  lastTransitionTime?: string;
  observedGeneration?: number;
}

export interface RoutingObject {
  metadata: { name: string; generation?: number; resourceVersion: string };
  status?: { observedGeneration?: number; conditions?: Condition[] };
}

/** The object as the API server has it (kubectl get -o json). */
export async function getRouting(
  cluster: Cluster,
  namespace: string,
  kind: 'vs' | 'dr' | 'pa' | 'authorizationpolicy',
  name: string,
): Promise<RoutingObject> {
  const { stdout } = await cluster.kubectl(['get', '-n', namespace, kind, name, '-o', 'json']);
  return JSON.parse(stdout) as RoutingObject;
}

export function accepted(o: RoutingObject): Condition | undefined {
  return o.status?.conditions?.find((c) => c.type === 'Accepted');
}
