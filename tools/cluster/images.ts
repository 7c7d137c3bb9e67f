// Images of the local cluster, which has no registry: the pod sandbox image (a static `pause` built from
// tools/peers/pause) and the Trellis images of `npm run images`, written as OCI layout tarballs and loaded
// with `ctr -n k8s.io images import`, then pinned so the kubelet's image GC never removes them.
import fs from 'node:fs';
import path from 'node:path';
import { buildImages, imagesCacheDir } from '../../deploy/images/build.js';
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

/** The sandbox image and the Trellis images (control plane, proxy, agent), built into the images cache. */
export async function buildClusterImages(
  pauseBinary: string,
  log: (line: string) => void = () => undefined,
): Promise<ImageTarball[]> {
  const pause = await buildPauseImage(pauseBinary);
  const trellis = await buildImages({ log: (line) => log(`  ${line}`) });
  return [{ reference: PAUSE_IMAGE, file: pause }, ...trellis.map((b) => ({ reference: b.reference, file: b.file }))];
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
