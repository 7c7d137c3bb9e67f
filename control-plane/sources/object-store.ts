// The objects the mesh is built from (Namespace, Service, EndpointSlice, Pod, VirtualService,
// DestinationRule), keyed by kind/namespace/name, each with its origin; and the problems the source
// found on the way (a file that does not parse, a skipped document), by scope. FileSource and
// KubeSource both write here; a batch of writes that changes anything emits one event, so a source
// that reads ten files or relists a kind causes one rebuild of the model, not ten.
//
// Objects are taken as they are and never copied: a source passes a new object on every change and
// never mutates one it has handed over (informer caches and FileSource both replace, never mutate).
import { canonicalJson } from '../model/canonical.js';
import { keyOf, objectKey, type MeshKind, type MeshObject, type Problem } from '../model/objects.js';

export interface StoreEvent {
  /** The store's version after the batch. */
  readonly version: number;
  /** Keys (`kind/namespace/name`) added, changed or deleted, sorted. */
  readonly changed: readonly string[];
  readonly problemsChanged: boolean;
  /**
   * When the source saw the change behind the batch (epoch ms): a file's last watch event before the scan
   * that read it, or the update itself. The push debounce counts its quiet time from here (mesh-source.ts).
   */
  readonly observedAt: number;
}

export interface StoreBatch {
  /** Adds or replaces the object with the same key. */
  put(object: MeshObject): void;
  delete(kind: MeshKind, namespace: string, name: string): void;
  /**
   * Makes the store hold exactly `objects` among those for which `scope` holds (all objects when
   * omitted): what a relist or a full re-read does. Objects outside `scope` are left alone.
   */
  replace(objects: readonly MeshObject[], scope?: (object: MeshObject) => boolean): void;
  /** Replaces the problems reported under `scope` (a file, an informer); [] clears them. */
  setProblems(scope: string, problems: readonly Problem[]): void;
}

function sameObject(a: MeshObject, b: MeshObject): boolean {
  if (a === b) return true;
  if (a.kind !== b.kind || a.namespace !== b.namespace || a.name !== b.name) return false;
  const ra = a.origin.resourceVersion;
  const rb = b.origin.resourceVersion;
  // Kubernetes: the same resourceVersion is the same content.
  if (ra !== undefined && ra === rb && canonicalJson(a.origin) === canonicalJson(b.origin)) return true;
  return canonicalJson(a.origin) === canonicalJson(b.origin) && canonicalJson(a.object) === canonicalJson(b.object);
}

export class ObjectStore {
  private readonly objects = new Map<string, MeshObject>();
  private readonly problemsByScope = new Map<string, readonly Problem[]>();
  private readonly listeners = new Set<(event: StoreEvent) => void>();
  private sortedObjects: readonly MeshObject[] | undefined;
  private allProblems: readonly Problem[] | undefined;
  private currentVersion = 0;

  /** Increases with every batch that changed something. */
  get version(): number {
    return this.currentVersion;
  }

  /** Every object, sorted by key. The same array until the next change. */
  list(): readonly MeshObject[] {
    this.sortedObjects ??= Object.freeze([...this.objects.keys()].sort().map((k) => this.objects.get(k)!));
    return this.sortedObjects;
  }

  get(kind: MeshKind, namespace: string, name: string): MeshObject | undefined {
    return this.objects.get(objectKey(kind, namespace, name));
  }

  /** The problems of every scope, scopes in sorted order. */
  problems(): readonly Problem[] {
    this.allProblems ??= Object.freeze(
      [...this.problemsByScope.keys()].sort().flatMap((scope) => this.problemsByScope.get(scope)!),
    );
    return this.allProblems;
  }

  /**
   * Runs `apply` and commits its writes as one batch; listeners hear one event if anything changed.
   * Returns that event, or undefined when the batch changed nothing. Nothing is committed if `apply`
   * throws.
   */
  update(apply: (batch: StoreBatch) => void, observedAt = Date.now()): StoreEvent | undefined {
    const staged = new Map<string, MeshObject | null>();
    const stagedProblems = new Map<string, readonly Problem[]>();
    const view = (key: string) => (staged.has(key) ? staged.get(key) : this.objects.get(key));
    const batch: StoreBatch = {
      put: (object) => void staged.set(keyOf(object), object),
      delete: (kind, namespace, name) => void staged.set(objectKey(kind, namespace, name), null),
      replace: (objects, scope = () => true) => {
        const keep = new Set<string>();
        for (const object of objects) {
          const key = keyOf(object);
          keep.add(key);
          staged.set(key, object);
        }
        // Every other object in scope goes: the stored ones, and any put earlier in this batch.
        const drop = (key: string): void => {
          if (keep.has(key)) return;
          const object = view(key);
          if (object && scope(object)) staged.set(key, null);
        };
        for (const key of this.objects.keys()) drop(key);
        for (const key of [...staged.keys()]) drop(key);
      },
      setProblems: (scope, problems) => void stagedProblems.set(scope, problems),
    };
    apply(batch);

    const changed: string[] = [];
    // Whether a key came or went (the sorted list is made again) or objects were only replaced (patched in).
    let keysMoved = false;
    for (const [key, object] of staged) {
      const current = this.objects.get(key);
      if (object === null) {
        if (current) {
          this.objects.delete(key);
          changed.push(key);
          keysMoved = true;
        }
      } else if (!current || !sameObject(current, object)) {
        this.objects.set(key, object);
        changed.push(key);
        if (!current) keysMoved = true;
      }
    }
    let problemsChanged = false;
    for (const [scope, problems] of stagedProblems) {
      const current = this.problemsByScope.get(scope) ?? [];
      if (canonicalJson(current) === canonicalJson(problems)) continue;
      problemsChanged = true;
      if (problems.length === 0) this.problemsByScope.delete(scope);
      else this.problemsByScope.set(scope, Object.freeze([...problems]));
    }
    if (changed.length === 0 && !problemsChanged) return undefined;
    if (changed.length > 0) this.sortedObjects = keysMoved ? undefined : this.replaced(changed);
    if (problemsChanged) this.allProblems = undefined;
    this.currentVersion += 1;
    const event: StoreEvent = { version: this.currentVersion, changed: changed.sort(), problemsChanged, observedAt };
    for (const listener of [...this.listeners]) listener(event);
    return event;
  }

  /** The sorted list with the objects of `keys` (all of them already in it) replaced, or undefined. */
  private replaced(keys: readonly string[]): readonly MeshObject[] | undefined {
    const list = this.sortedObjects;
    if (!list || keys.length > 64) return undefined;
    const next = [...list];
    for (const key of keys) {
      let lo = 0;
      let hi = next.length - 1;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (keyOf(next[mid]!) < key) lo = mid + 1;
        else hi = mid;
      }
      if (keyOf(next[lo]!) !== key) return undefined;
      next[lo] = this.objects.get(key)!;
    }
    return Object.freeze(next);
  }

  /** Calls `listener` after every batch that changed something; returns a function that unsubscribes. */
  onChange(listener: (event: StoreEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
