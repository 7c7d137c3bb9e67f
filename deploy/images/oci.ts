// OCI images without Docker or a registry: deterministic tar layers, content-addressed blobs, and an OCI
// image layout (oci-layout, index.json, blobs/sha256/…) written as one tar, which `ctr images import`
// (containerd) and skopeo read. Same input, same bytes: entries sorted by path, mtime 0, uid/gid 0, no
// user or group names, mode from the source (0755 or 0644), parent directories added explicitly.
// Layers are uncompressed (`application/vnd.oci.image.layer.v1.tar`): their digest is also their diff_id,
// and no CPU goes into gzip on a shared machine.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import tar from 'tar-stream';

export const MEDIA_TYPES = {
  index: 'application/vnd.oci.image.index.v1+json',
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  layer: 'application/vnd.oci.image.layer.v1.tar',
} as const;

const EPOCH = new Date(0);
type TarHeader = Parameters<tar.Pack['entry']>[0];

/** One path in a layer; `path` is absolute in the image (`/usr/local/bin/node`). */
export type LayerEntry =
  | { readonly type: 'file'; readonly path: string; readonly mode: number; readonly source: string }
  | { readonly type: 'file'; readonly path: string; readonly mode: number; readonly content: Buffer }
  | { readonly type: 'symlink'; readonly path: string; readonly target: string }
  | { readonly type: 'directory'; readonly path: string; readonly mode: number };

export interface Descriptor {
  readonly mediaType: string;
  readonly digest: string;
  readonly size: number;
  readonly annotations?: Readonly<Record<string, string>>;
  readonly platform?: { readonly architecture: string; readonly os: string };
}

/** A sink for tar bytes that counts and hashes them on the way to a file. */
function hashing(onBytes: (n: number) => void): { stream: Transform; digest: () => string; size: () => number } {
  const hash = crypto.createHash('sha256');
  let size = 0;
  const stream = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      size += chunk.length;
      onBytes(chunk.length);
      cb(null, chunk);
    },
  });
  return { stream, digest: () => `sha256:${hash.digest('hex')}`, size: () => size };
}

/** Entries sorted by path, each parent directory present once (0755 unless listed), duplicates refused. */
export function normalizeEntries(entries: readonly LayerEntry[]): LayerEntry[] {
  const byPath = new Map<string, LayerEntry>();
  for (const e of entries) {
    const p = path.posix.normalize(e.path);
    if (!p.startsWith('/') || p === '/') throw new Error(`layer entry ${e.path}: path must be absolute and not /`);
    const existing = byPath.get(p);
    if (existing && !(existing.type === 'directory' && e.type === 'directory')) {
      throw new Error(`layer entry ${p}: listed twice`);
    }
    byPath.set(p, { ...e, path: p });
  }
  for (const p of [...byPath.keys()]) {
    for (let dir = path.posix.dirname(p); dir !== '/'; dir = path.posix.dirname(dir)) {
      const existing = byPath.get(dir);
      if (existing && existing.type !== 'directory')
        throw new Error(`layer entry ${dir}: a parent of ${p} is not a directory`);
      if (!existing) byPath.set(dir, { type: 'directory', path: dir, mode: 0o755 });
    }
  }
  return [...byPath.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

function header(e: LayerEntry, size: number): TarHeader {
  const name = e.path.slice(1) + (e.type === 'directory' ? '/' : '');
  const common = { name, mtime: EPOCH, uid: 0, gid: 0, uname: '', gname: '' };
  if (e.type === 'directory') return { ...common, type: 'directory', mode: e.mode };
  if (e.type === 'symlink') return { ...common, type: 'symlink', mode: 0o777, linkname: e.target };
  return { ...common, type: 'file', mode: e.mode, size };
}

async function writeEntry(pack: tar.Pack, e: LayerEntry): Promise<void> {
  if (e.type !== 'file') {
    await new Promise<void>((resolve, reject) => pack.entry(header(e, 0), (err) => (err ? reject(err) : resolve())));
    return;
  }
  if ('content' in e) {
    await new Promise<void>((resolve, reject) =>
      pack.entry(header(e, e.content.length), e.content, (err) => (err ? reject(err) : resolve())),
    );
    return;
  }
  const size = fs.statSync(e.source).size;
  const sink = pack.entry(header(e, size));
  await pipeline(fs.createReadStream(e.source), sink);
}

/** The blob store of a build: `<dir>/blobs/sha256/<hex>`. */
export class BlobStore {
  constructor(readonly dir: string) {
    fs.mkdirSync(path.join(dir, 'blobs', 'sha256'), { recursive: true });
  }

  pathOf(digest: string): string {
    return path.join(this.dir, 'blobs', 'sha256', digest.replace(/^sha256:/, ''));
  }

  /** Writes a JSON blob (compact, keys as given); returns its descriptor. */
  putJson(mediaType: string, value: unknown, extra: Partial<Descriptor> = {}): Descriptor {
    const bytes = Buffer.from(JSON.stringify(value));
    const digest = `sha256:${crypto.createHash('sha256').update(bytes).digest('hex')}`;
    fs.writeFileSync(this.pathOf(digest), bytes);
    return { mediaType, digest, size: bytes.length, ...extra };
  }

  /** Writes a tar layer of `entries`; `onBytes` sees its progress. Returns its descriptor (digest = diff_id). */
  async putLayer(entries: readonly LayerEntry[], onBytes: (n: number) => void = () => undefined): Promise<Descriptor> {
    // Refuse bad entries before the temporary file exists: its write stream opens it asynchronously, so a
    // file removed right after an early failure could still appear afterwards.
    const normalized = normalizeEntries(entries);
    const tmp = path.join(this.dir, `layer-${process.pid}-${crypto.randomBytes(6).toString('hex')}.tar`);
    const sink = hashing(onBytes);
    const pack = tar.pack();
    const written = pipeline(pack, sink.stream, fs.createWriteStream(tmp));
    try {
      for (const e of normalized) await writeEntry(pack, e);
      pack.finalize();
      await written;
    } catch (err) {
      pack.destroy();
      await written.catch(() => undefined);
      fs.rmSync(tmp, { force: true });
      throw err;
    }
    const digest = sink.digest();
    fs.renameSync(tmp, this.pathOf(digest));
    return { mediaType: MEDIA_TYPES.layer, digest, size: sink.size() };
  }
}

export interface ImageConfig {
  readonly user: string;
  readonly entrypoint: readonly string[];
  readonly cmd: readonly string[];
  readonly env: readonly string[];
  readonly workingDir: string;
  readonly exposedPorts?: readonly number[];
  readonly labels?: Readonly<Record<string, string>>;
}

/** `amd64` / `arm64` for Node's process.arch. */
export function ociArchitecture(arch: string = process.arch): string {
  const map: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x' };
  const out = map[arch];
  if (!out) throw new Error(`no OCI architecture for Node's process.arch "${arch}"`);
  return out;
}

/** Writes config and manifest blobs for `layers`; returns the manifest's descriptor (for index.json). */
export function putImage(
  store: BlobStore,
  layers: readonly Descriptor[],
  config: ImageConfig,
  reference: string,
): Descriptor {
  const architecture = ociArchitecture();
  const configBlob = store.putJson(MEDIA_TYPES.config, {
    created: EPOCH.toISOString(),
    architecture,
    os: 'linux',
    config: {
      User: config.user,
      Env: config.env,
      Entrypoint: config.entrypoint,
      Cmd: config.cmd,
      WorkingDir: config.workingDir,
      ...(config.exposedPorts?.length
        ? { ExposedPorts: Object.fromEntries(config.exposedPorts.map((p) => [`${p}/tcp`, {}])) }
        : {}),
      ...(config.labels ? { Labels: config.labels } : {}),
    },
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) },
  });
  const manifest = store.putJson(MEDIA_TYPES.manifest, {
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.manifest,
    config: configBlob,
    layers,
  });
  const tag = reference.slice(reference.lastIndexOf(':') + 1);
  return {
    ...manifest,
    annotations: { 'io.containerd.image.name': reference, 'org.opencontainers.image.ref.name': tag },
    platform: { architecture, os: 'linux' },
  };
}

/** The OCI layout of one image as a tar file: oci-layout, index.json and every blob the manifest names. */
export async function writeLayoutTar(
  store: BlobStore,
  manifest: Descriptor,
  file: string,
  onBytes: (n: number) => void = () => undefined,
): Promise<void> {
  const manifestJson = JSON.parse(fs.readFileSync(store.pathOf(manifest.digest), 'utf8')) as {
    config: Descriptor;
    layers: Descriptor[];
  };
  const blobs = [manifest, manifestJson.config, ...manifestJson.layers];
  const entries: LayerEntry[] = [
    {
      type: 'file',
      path: '/oci-layout',
      mode: 0o644,
      content: Buffer.from(JSON.stringify({ imageLayoutVersion: '1.0.0' })),
    },
    {
      type: 'file',
      path: '/index.json',
      mode: 0o644,
      content: Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPES.index, manifests: [manifest] })),
    },
    ...[...new Map(blobs.map((b) => [b.digest, b])).values()].map((b): LayerEntry => ({
      type: 'file',
      path: `/blobs/sha256/${b.digest.replace(/^sha256:/, '')}`,
      mode: 0o644,
      source: store.pathOf(b.digest),
    })),
  ];
  const tmp = `${file}.tmp-${process.pid}`;
  const pack = tar.pack();
  const sink = hashing(onBytes);
  const written = pipeline(pack, sink.stream, fs.createWriteStream(tmp));
  for (const e of normalizeEntries(entries)) await writeEntry(pack, e);
  pack.finalize();
  await written;
  fs.renameSync(tmp, file);
}
