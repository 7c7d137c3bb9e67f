// Images of the local cluster, which has no registry: the pod sandbox image (a static `pause` built from
// tools/peers/pause) and the Trellis images of `npm run images`, written as OCI layout tarballs and loaded
// with `ctr -n k8s.io images import`, then pinned so the kubelet's image GC never removes them.
import fs from 'node:fs';
import path from 'node:path';
import { buildImages, buildRef, IMAGE_KEYS, imagesCacheDir, repoRoot } from '../../deploy/images/build.js';
import { DEFAULT_REGISTRY, DEFAULT_TAG } from '../../injector/images.js';
import { BlobStore, putImage, writeLayoutTar } from '../../deploy/images/oci.js';
import { run } from './exec.js';
import { PAUSE_IMAGE } from './layout.js';

/** Writes the sandbox image's tarball (from the pause peer binary); returns its path. */
export async function buildPauseImage(pauseBinary: string, outDir: string = imagesCacheDir()): Promise<string> {
  const store = new BlobStore(outDir);
  const layer = await store.putLayer([{ type: 'file', path: '/pause', mode: 0o755, source: pauseBinary }]);
  const manifest = putImage(
    store,
    [layer],
    { user: '65535:65535', entrypoint: ['/pause'], cmd: [], env: [], workingDir: '/' },
    PAUSE_IMAGE,
  );
  const file = path.join(outDir, 'trellis-pause.oci.tar');
  await writeLayoutTar(store, manifest, file);
  return file;
}

export interface ImageTarball {
  readonly reference: string;
  readonly file: string;
}

/** Newest modification time (ms) of the files at or below `paths` (absent paths count 0). */
function newestMtime(paths: readonly string[]): number {
  let newest = 0;
  const walk = (p: string): void => {
    let st: fs.Stats;
    try {
      st = fs.statSync(p);
    } catch {
      return;
    }
    newest = Math.max(newest, st.mtimeMs);
    if (st.isDirectory()) for (const e of fs.readdirSync(p)) walk(path.join(p, e));
  };
  for (const p of paths) walk(p);
  return newest;
}

function mtime(file: string): number {
  try {
    return fs.statSync(file).mtimeMs;
  } catch {
    return 0;
  }
}

/**
 * The sandbox image and the Trellis images of `npm run images`, in the images cache. Tarballs newer than
 * everything they are made of (dist/, the installed packages, this Node binary; the pause binary) are
 * reused; otherwise they are built again.
 */
export async function buildClusterImages(
  pauseBinary: string,
  log: (line: string) => void = () => undefined,
): Promise<ImageTarball[]> {
  const outDir = imagesCacheDir();
  let pause = path.join(outDir, 'trellis-pause.oci.tar');
  if (mtime(pause) <= mtime(pauseBinary)) pause = await buildPauseImage(pauseBinary, outDir);
  const opts = { tag: DEFAULT_TAG, registry: DEFAULT_REGISTRY };
  const cached = IMAGE_KEYS.map((key) => {
    const reference = buildRef(key, opts);
    const name = reference.slice(reference.lastIndexOf('/') + 1).replace(':', '-');
    return { reference, file: path.join(outDir, `${name}.oci.tar`) };
  });
  const sources = newestMtime([
    path.join(repoRoot, 'dist'),
    path.join(repoRoot, 'package-lock.json'),
    path.join(repoRoot, 'node_modules', '.package-lock.json'),
    process.execPath,
  ]);
  let trellis: ImageTarball[];
  if (cached.every((c) => mtime(c.file) > sources)) {
    log(`images up to date in ${outDir} (newer than dist/ and the installed packages)`);
    trellis = cached;
  } else {
    const built = await buildImages({ log: (line) => log(`  ${line}`) });
    trellis = built.map((b) => ({ reference: b.reference, file: b.file }));
  }
  return [{ reference: PAUSE_IMAGE, file: pause }, ...trellis];
}

/** Imports one tarball into containerd's k8s.io namespace and pins its image. */
export async function importImage(socket: string, image: ImageTarball): Promise<void> {
  if (!fs.existsSync(image.file)) throw new Error(`image tarball ${image.file} does not exist`);
  await run('ctr', ['-a', socket, '-n', 'k8s.io', 'images', 'import', image.file], { timeoutMs: 300_000 });
  await run('ctr', [
    '-a',
    socket,
    '-n',
    'k8s.io',
    'images',
    'label',
    image.reference,
    'io.cri-containerd.pinned=pinned',
  ]);
}
