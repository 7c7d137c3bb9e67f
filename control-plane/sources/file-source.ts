// FileSource: the mesh from a directory of the very same YAML a cluster holds (design.md §1), for
// running Trellis without Kubernetes. Every `.yaml`, `.yml` and `.json` file under the directory
// (recursively; names starting with `.` skipped) is read as multi-document YAML; the objects go into an
// ObjectStore and a MeshSource turns them into snapshots.
//
// Rules (design.md §5.3, one bad object hurts only itself):
// - A file that stops parsing is reported (its file and document, in the log and in the snapshot's
//   problems) and its last good content stays in the model. A deleted file takes its objects with it.
// - Documents of other kinds (Deployment, ConfigMap, …) are skipped with a note; namespaced objects
//   without a namespace are in `default`.
// - An object defined in two places: the first by path and document wins; the other is reported.
// Watching: one non-recursive fs.watch per directory. Node 20's `recursive: true` on Linux misses
// deletions (checked on 20.20: removing a file raised no event), so the source watches each directory
// itself and re-syncs the set of watchers on every walk. Any event schedules a scan after `debounceMs`
// (50 ms) of quiet, which coalesces the several events of one editor save; a scan that changes nothing
// publishes nothing. A scan looks only at the files its events named (a change costs what it changes:
// in a directory of 4,000 files, walking and stat'ing every file took 20–30 ms of each change). It walks
// the whole tree instead when an event names a directory (one appeared, went or was replaced: a
// ConfigMap's `..data` swap), when an event has no name or a watcher failed, when a directory of the
// last walk is unreadable or unwatched, when a burst names more than `maxNamedPaths` (256) paths
// (inotify drops events past its queue), and on every explicit rescan(). A burst of only renames (the atomic write
// the README asks for: a temporary file renamed over the real one, or a ConfigMap's `..data` swap) and
// writes to hidden files (the temporary one, never read) waits only `renameDebounceMs` (10 ms): a renamed
// file is complete, so there is nothing to wait for but the other renames of the same burst. A write to
// a visible file (an editor saving in place) makes the burst wait the full `debounceMs`. Symlinked files
// are followed, so a mounted ConfigMap (whose `..data` symlink is swapped on update) works too.
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from '../logger.js';
import { silentLogger } from '../logger.js';
import type { MeshObject, Problem } from '../model/objects.js';
import { formatOrigin, keyOf, located } from '../model/objects.js';
import type { MeshSnapshot } from '../model/snapshot.js';
import type { ChangeTiming, SnapshotSource } from '../xds/generator.js';
import type { TraceSpan } from '../../lib/tracing.js';
import { parseManifests } from './manifests.js';
import { MeshSource, type MeshSourceOptions } from './mesh-source.js';
import { ObjectStore, type StoreBatch } from './object-store.js';

export interface FileSourceOptions extends MeshSourceOptions {
  readonly directory: string;
  /** Quiet time before a re-read after a file event; 50 ms. */
  readonly debounceMs?: number;
  /** Quiet time instead when the burst holds only renames and writes to hidden files (atomic writes); 10 ms. */
  readonly renameDebounceMs?: number;
  /** A burst of watch events naming more paths than this is read by a walk of the whole tree; 256. */
  readonly maxNamedPaths?: number;
}

const EXTENSIONS = new Set(['.yaml', '.yml', '.json']);

/** The default of FileSourceOptions.maxNamedPaths. */
export const MAX_NAMED_PATHS = 256;

/** What the last scan looked at (debug log, tests). */
export interface ScanSummary {
  /** Whether it walked the whole tree (or looked only at the files its watch events named). */
  readonly walked: boolean;
  /** Files it stat'ed. */
  readonly checked: number;
  /** Files it read (new, changed or racy). */
  readonly read: number;
}

interface FileState {
  /** The text last read (undefined when it could not be read), to skip re-parsing what did not change. */
  readonly text: string | undefined;
  /** The objects of the last text that parsed. */
  readonly objects: readonly MeshObject[];
  readonly problems: readonly Problem[];
  /** The file's identity and times when `text` was read, and when (wall clock, ns) the read began. */
  readonly stat?: FileStamp;
  readonly readAtNs?: bigint;
}

/** What says a file is the one read before: device, inode, size, and modification and change times (ns). */
interface FileStamp {
  readonly dev: bigint;
  readonly ino: bigint;
  readonly size: bigint;
  readonly mtimeNs: bigint;
  readonly ctimeNs: bigint;
}

/**
 * A file is not read again when its stamp is the one recorded at the last read and it was last modified
 * well before that read began (so a write in the same timestamp tick as the read cannot hide: git's
 * "racy clean" rule). A rename onto it (the atomic write the README asks for) is a new inode.
 */
const RACY_NS = 2_000_000_000n;

function stampOf(stat: fs.BigIntStats): FileStamp {
  return { dev: stat.dev, ino: stat.ino, size: stat.size, mtimeNs: stat.mtimeNs, ctimeNs: stat.ctimeNs };
}

function sameStamp(a: FileStamp, b: FileStamp): boolean {
  return a.dev === b.dev && a.ino === b.ino && a.size === b.size && a.mtimeNs === b.mtimeNs && a.ctimeNs === b.ctimeNs;
}

export class FileSource implements SnapshotSource<MeshSnapshot> {
  readonly store = new ObjectStore();
  readonly directory: string;
  private readonly mesh: MeshSource;
  private readonly logger: Logger;
  private readonly debounceMs: number;
  private readonly renameDebounceMs: number;
  private readonly maxNamedPaths: number;
  /** The pending burst saw a write to a visible file (not only renames): it waits the full debounce. */
  private burstWrites = false;
  private readonly files = new Map<string, FileState>();
  /** Each watched directory's watcher, and the directory's device and inode when the watch began. */
  private readonly watchers = new Map<string, { readonly watcher: fs.FSWatcher; readonly identity: string }>();
  private timer: NodeJS.Timeout | undefined;
  private firstPendingAt: number | undefined;
  /** The last watch event not yet taken by a scan (epoch ms): when the change the next scan reads was seen. */
  private lastEventAt: number | undefined;
  private scanning: Promise<void> | undefined;
  private rescanRequested = false;
  private stopped = false;
  /** The objects defined twice at the last scan that collected objects (undefined before the first). */
  private lastDuplicates: readonly Problem[] | undefined;
  /** The file each object in the store came from (its key's first definition), as collectObjects found it. */
  private readonly owners = new Map<string, string>();
  /** Paths named by watch events since the last scan took them. */
  private namedPaths = new Set<string>();
  /** The next scan walks the whole tree (an event without a name, a failed watcher, an explicit rescan). */
  private walkNeeded = true;
  /** The last walk listed only readable, watched directories: a scan may look at named paths alone. */
  private watchedWhole = false;
  /** The problems of the last walk (unreadable directories), kept by scans that do not walk. */
  private walkProblems: readonly Problem[] = [];
  private summary: ScanSummary | undefined;

  constructor(options: FileSourceOptions) {
    this.directory = options.directory;
    this.logger = options.logger ?? silentLogger;
    this.debounceMs = options.debounceMs ?? 50;
    this.renameDebounceMs = Math.min(options.renameDebounceMs ?? 10, this.debounceMs);
    this.maxNamedPaths = options.maxNamedPaths ?? MAX_NAMED_PATHS;
    this.mesh = new MeshSource(this.store, options);
  }

  current(): MeshSnapshot {
    return this.mesh.current();
  }

  onChange(listener: (change?: TraceSpan, timing?: ChangeTiming) => void): () => void {
    return this.mesh.onChange(listener);
  }

  ready(): boolean {
    return this.mesh.ready();
  }

  /** Reads the whole directory, publishes the first snapshot and starts watching. Throws if the directory cannot be read. */
  async start(): Promise<void> {
    const stat = await fs.promises.stat(this.directory);
    if (!stat.isDirectory()) throw new Error(`${this.directory}: not a directory`);
    await this.rescan();
    this.mesh.markReady();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    for (const { watcher } of this.watchers.values()) watcher.close();
    this.watchers.clear();
    await this.scanning;
    this.mesh.close();
  }

  /** What the last scan looked at; undefined before the first. */
  get lastScan(): ScanSummary | undefined {
    return this.summary;
  }

  /**
   * Walks and re-reads the directory now (every file stat'ed). Scans never overlap: a call during a scan
   * runs one more scan after it.
   */
  rescan(): Promise<void> {
    this.walkNeeded = true;
    return this.runScans();
  }

  /** Runs a scan now, or one more after the running one. */
  private async runScans(): Promise<void> {
    if (this.scanning) {
      this.rescanRequested = true;
      return this.scanning;
    }
    this.scanning = (async () => {
      try {
        do {
          this.rescanRequested = false;
          await this.scan();
        } while (this.rescanRequested && !this.stopped);
      } finally {
        this.scanning = undefined;
      }
    })();
    return this.scanning;
  }

  /**
   * A watch event: `write` false for a rename (a file appeared, went or was replaced) and for a write to a
   * hidden file, true for a write to a visible file or an event without a name.
   */
  private schedule(write = true): void {
    if (this.stopped) return;
    const now = Date.now();
    this.firstPendingAt ??= now;
    this.lastEventAt = now;
    if (write) this.burstWrites = true;
    clearTimeout(this.timer);
    // Trailing debounce, but never more than 10 quiet periods behind the first event of a burst.
    const quietMs = this.burstWrites ? this.debounceMs : this.renameDebounceMs;
    const delay = now - this.firstPendingAt > 10 * this.debounceMs ? 0 : quietMs;
    this.timer = setTimeout(() => {
      this.firstPendingAt = undefined;
      this.burstWrites = false;
      this.runScans().catch((err: unknown) => this.logger.error({ err }, 'reading the mesh directory failed'));
    }, delay);
  }

  /** The files and directories under the root (sorted, relative paths use the root as given). */
  private async walk(): Promise<{ files: string[]; directories: string[]; unreadable: string[]; problems: Problem[] }> {
    const files: string[] = [];
    const directories: string[] = [];
    const unreadable: string[] = [];
    const problems: Problem[] = [];
    const seen = new Set<string>();
    const visit = async (dir: string): Promise<void> => {
      // A symlink back up the tree must not make the walk endless.
      const real = await fs.promises.realpath(dir).catch(() => dir);
      if (seen.has(real)) return;
      seen.add(real);
      directories.push(dir);
      let entries: fs.Dirent[];
      try {
        entries = await fs.promises.readdir(dir, { withFileTypes: true });
      } catch (err) {
        unreadable.push(dir);
        problems.push({
          severity: 'error',
          origin: { file: dir },
          message: `${dir}: cannot read the directory (its files keep their last content): ${(err as Error).message}`,
        });
        return;
      }
      for (const entry of entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
        if (entry.name.startsWith('.')) continue;
        const full = path.join(dir, entry.name);
        let isDir = entry.isDirectory();
        let isFile = entry.isFile();
        if (entry.isSymbolicLink()) {
          const target = await fs.promises.stat(full).catch(() => undefined);
          isDir = target?.isDirectory() ?? false;
          isFile = target?.isFile() ?? false;
        }
        if (isDir) await visit(full);
        else if (isFile && EXTENSIONS.has(path.extname(entry.name).toLowerCase())) files.push(full);
      }
    };
    await visit(this.directory);
    return { files: files.sort(), directories, unreadable, problems };
  }

  private async scan(): Promise<void> {
    // The change this scan reads was seen at the last watch event before it (an event during the scan
    // schedules another scan, with its own time).
    const observedAt = this.lastEventAt ?? Date.now();
    this.lastEventAt = undefined;
    const named = this.namedPaths;
    this.namedPaths = new Set();
    const walk = this.walkNeeded || !this.watchedWhole || named.size > this.maxNamedPaths;
    this.walkNeeded = false;
    const namedFiles = walk ? undefined : this.namedFiles(named);

    // Whether any file's objects may differ from the last scan's (read anew, failed, appeared or gone), and
    // whether only files that parsed anew did (`edited`, with the objects each held before): those can be
    // patched into the store instead of collecting every file again.
    let changed = this.lastDuplicates === undefined;
    let onlyEdited = !changed;
    const edited = new Map<string, readonly MeshObject[]>();
    let files: readonly string[];
    if (namedFiles) files = namedFiles;
    else {
      // A file created in a new directory after the walk listed it and before its watcher existed raised no
      // event: while the walk found directories not yet watched, it lists again once they are.
      let walked = await this.walk();
      while (!this.stopped && this.syncWatchers(walked.directories) > 0) walked = await this.walk();
      if (this.stopped) return;
      this.watchedWhole = walked.unreadable.length === 0 && walked.directories.every((dir) => this.watchers.has(dir));
      this.walkProblems = walked.problems;
      files = walked.files;
      // A file is gone when its directory was read and did not list it; files under a directory that
      // could not be read (the root gone, a permission) keep their last content: fail static.
      const present = new Set(files);
      const underUnreadable = (file: string) => walked.unreadable.some((dir) => file.startsWith(dir + path.sep));
      for (const file of [...this.files.keys()]) {
        if (!present.has(file) && !underUnreadable(file)) {
          this.files.delete(file);
          changed = true;
          onlyEdited = false;
        }
      }
    }
    let read = 0;
    for (const file of files) {
      let text: string;
      let stamp: FileStamp | undefined;
      const readAtNs = BigInt(Date.now()) * 1_000_000n;
      try {
        const previous = this.files.get(file);
        // Synchronous: one stat system call per file (about 2 µs from the page cache) instead of a thread-pool
        // round trip each, which made a scan of 1,000 unchanged files take 100–300 ms on a busy machine.
        const stat = fs.statSync(file, { bigint: true, throwIfNoEntry: false });
        if (!stat) {
          if (this.files.delete(file)) {
            changed = true; // deleted since the walk
            onlyEdited = false;
          }
          continue;
        }
        stamp = stampOf(stat);
        if (
          previous?.stat &&
          previous.readAtNs !== undefined &&
          sameStamp(previous.stat, stamp) &&
          stat.mtimeNs + RACY_NS < previous.readAtNs &&
          stat.ctimeNs + RACY_NS < previous.readAtNs
        ) {
          continue;
        }
        // Synchronous too, for the same reason: a file read through the thread pool is four round trips
        // (open, fstat, read, close). The files read are the changed ones and the racy ones (written within
        // RACY_NS of their last read, so read again: a mesh written just before the control plane started
        // is re-read whole by the first scan after). Read async, the first endpoint change of xds-mesh's
        // 4,000 files spent ~90 ms of its 180 ms to the snapshot waiting on the pool.
        text = fs.readFileSync(file, 'utf8');
        read++;
      } catch (err) {
        changed = true;
        onlyEdited = false;
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
          this.files.delete(file); // deleted since the walk
          continue;
        }
        this.fail(file, [
          { severity: 'error', origin: { file }, message: `${file}: cannot read: ${(err as Error).message}` },
        ]);
        continue;
      }
      const previous = this.files.get(file);
      if (previous && previous.text === text) {
        this.files.set(file, { ...previous, stat: stamp, readAtNs });
        continue;
      }
      changed = true;
      const parsed = parseManifests(text, file);
      if (parsed.ok) {
        if (!edited.has(file)) edited.set(file, previous?.objects ?? []);
        this.files.set(file, { text, objects: parsed.objects, problems: parsed.problems, stat: stamp, readAtNs });
      } else {
        onlyEdited = false;
        this.fail(file, parsed.problems, text);
      }
    }
    if (this.stopped) return;
    // Every object once: the first definition by path and document wins. When no file changed, every file
    // holds the objects it held: only the problems (an unreadable directory) can move. When only some
    // files were edited and no key of theirs is defined elsewhere, their objects are patched in.
    const patch = changed && onlyEdited ? this.patchEdited(edited) : undefined;
    const objects = changed && !patch ? this.collectObjects() : undefined;
    const problems = [
      ...this.walkProblems,
      ...(this.lastDuplicates ?? []),
      ...[...this.files.values()].flatMap((f) => f.problems),
    ];
    this.summary = { walked: namedFiles === undefined, checked: files.length, read };
    this.logger.debug({ ...this.summary, named: named.size }, 'mesh directory scanned');
    this.store.update((batch) => {
      if (objects) batch.replace(objects);
      patch?.(batch);
      batch.setProblems(this.directory, problems);
    }, observedAt);
  }

  /**
   * The mesh files among `paths` (named by watch events; a named file that is gone is among them, and the
   * read finds it gone), sorted; undefined when only a walk can tell what changed: a path is a directory
   * (one appeared or was replaced; a ConfigMap's `..data` swap renames a hidden symlink to a directory),
   * a watched directory is gone, or a path cannot be stat'ed. Hidden files (an atomic write's temporary
   * file) are never read.
   */
  private namedFiles(paths: ReadonlySet<string>): string[] | undefined {
    const files: string[] = [];
    for (const file of paths) {
      let stat: fs.Stats | undefined;
      try {
        stat = fs.statSync(file, { throwIfNoEntry: false });
      } catch {
        return undefined;
      }
      if (stat ? stat.isDirectory() : this.watchers.has(file)) return undefined;
      if (path.basename(file).startsWith('.')) continue;
      if (EXTENSIONS.has(path.extname(file).toLowerCase())) files.push(file);
    }
    return files.sort();
  }

  /**
   * The store writes for `edited` files (each with the objects it held before), when no duplicate exists
   * anywhere and none of their keys, old or new, belongs to another file: then every object of theirs is
   * the first definition of its key, as collectObjects would find. Undefined otherwise (collect instead).
   */
  private patchEdited(edited: ReadonlyMap<string, readonly MeshObject[]>): ((batch: StoreBatch) => void) | undefined {
    if (this.lastDuplicates?.length !== 0) return undefined;
    const puts: MeshObject[] = [];
    const gone: MeshObject[] = [];
    const owned = new Map<string, string>();
    for (const [file, before] of edited) {
      const keys = new Set<string>();
      for (const object of this.files.get(file)!.objects) {
        const key = keyOf(object);
        const owner = this.owners.get(key);
        if (keys.has(key) || owned.has(key) || (owner !== undefined && owner !== file)) return undefined;
        keys.add(key);
        owned.set(key, file);
        puts.push(object);
      }
      for (const object of before) if (!keys.has(keyOf(object))) gone.push(object);
    }
    for (const object of gone) this.owners.delete(keyOf(object));
    for (const [key, file] of owned) this.owners.set(key, file);
    return (batch) => {
      for (const object of gone) batch.delete(object.kind, object.namespace, object.name);
      for (const object of puts) batch.put(object);
    };
  }

  /** The objects of all files, the first definition of a key by path and document; the rest are duplicates. */
  private collectObjects(): MeshObject[] {
    const objects = new Map<string, MeshObject>();
    const duplicates: Problem[] = [];
    this.owners.clear();
    for (const file of [...this.files.keys()].sort()) {
      for (const object of this.files.get(file)!.objects) {
        const key = keyOf(object);
        const first = objects.get(key);
        if (first) {
          duplicates.push({
            severity: 'error',
            object: { kind: object.kind, namespace: object.namespace, name: object.name },
            origin: object.origin,
            message: located(
              object.origin,
              `${object.kind} ${object.namespace ? `${object.namespace}/` : ''}${object.name} is already defined in ${formatOrigin(first.origin)}; this copy is ignored`,
            ),
          });
        } else {
          objects.set(key, object);
          this.owners.set(key, file);
        }
      }
    }
    this.lastDuplicates = duplicates;
    return [...objects.values()];
  }

  /** A file that cannot be read or parsed keeps its last good objects, with the new problems. */
  private fail(file: string, problems: readonly Problem[], text?: string): void {
    const previous = this.files.get(file);
    const kept = previous?.objects ?? [];
    const note: Problem[] =
      kept.length > 0
        ? [
            {
              severity: 'warning',
              origin: { file },
              message: `${file}: keeping its last good content (${kept.length} objects)`,
            },
          ]
        : [];
    // Remember the broken text too, so that the same broken content is not parsed again on every scan.
    this.files.set(file, { text, objects: kept, problems: [...problems, ...note] });
  }

  /**
   * Watches exactly `directories`; returns how many it started watching. A directory removed and made again
   * under the same path needs a new watcher: the old one died with the old directory. It reported that as a
   * rename of its own name, and no error (the watch callback then drops it); a directory whose device and
   * inode moved (another one renamed over it) is watched anew too.
   */
  private syncWatchers(directories: readonly string[]): number {
    let added = 0;
    const wanted = new Set(directories);
    for (const [dir, { watcher }] of this.watchers) {
      if (!wanted.has(dir)) {
        watcher.close();
        this.watchers.delete(dir);
      }
    }
    for (const dir of directories) {
      const stat = fs.statSync(dir, { throwIfNoEntry: false });
      if (!stat) continue; // gone since the walk listed it: the event of its removal walks again
      const identity = `${stat.dev}:${stat.ino}`;
      const known = this.watchers.get(dir);
      if (known?.identity === identity) continue;
      known?.watcher.close();
      this.watchers.delete(dir);
      try {
        const self = path.basename(dir);
        // The directory went away or was replaced, and this watcher with it: forget it; the next scan walks.
        const drop = (): void => {
          watcher.close();
          if (this.watchers.get(dir)?.watcher === watcher) this.watchers.delete(dir);
          this.walkNeeded = true;
        };
        const watcher: fs.FSWatcher = fs.watch(dir, (event, name) => {
          const named = typeof name === 'string' && name !== '' ? name : undefined;
          if (named === undefined) this.walkNeeded = true;
          else {
            this.namedPaths.add(path.join(dir, named));
            // The directory's own name: it was removed or moved away (a new directory at the path, even on
            // the same inode, is not watched by this watcher).
            if (named === self) drop();
          }
          this.schedule(event !== 'rename' && !(named !== undefined && path.basename(named).startsWith('.')));
        });
        watcher.on('error', () => {
          drop();
          this.schedule();
        });
        this.watchers.set(dir, { watcher, identity });
        added++;
      } catch (err) {
        this.logger.warn({ dir, err }, 'cannot watch a directory of the mesh; its changes are seen on the next scan');
      }
    }
    return added;
  }
}
