// `npm run images` (deploy/images/): the control-plane image as an OCI image layout tarball, checked the
// way a runtime reads it (index.json → manifest → config and layers, every digest and size), and built
// twice from the same files to the same bytes. (Importing into containerd is the next issue's: no ctr here.)
import test from 'ava';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tar from 'tar-stream';
import { buildImages } from '../../deploy/images/build.js';
import { BlobStore, MEDIA_TYPES, type LayerEntry } from '../../deploy/images/oci.js';

interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
}

/** The files of a tar: name → bytes (directories and links as empty entries with their type). */
async function readTar(
  file: string,
): Promise<Map<string, { type: string; data: Buffer; mode: number; linkname?: string }>> {
  const out = new Map<string, { type: string; data: Buffer; mode: number; linkname?: string }>();
  const extract = tar.extract();
  const done = (async () => {
    for await (const entry of extract) {
      const chunks: Buffer[] = [];
      for await (const chunk of entry) chunks.push(chunk as Buffer);
      out.set(entry.header.name, {
        type: entry.header.type ?? 'file',
        data: Buffer.concat(chunks),
        mode: entry.header.mode ?? 0,
        ...(entry.header.linkname ? { linkname: entry.header.linkname } : {}),
      });
      if (entry.header.mtime && entry.header.mtime.getTime() !== 0)
        throw new Error(`${entry.header.name}: mtime is not 0`);
    }
  })();
  fs.createReadStream(file).pipe(extract);
  await done;
  return out;
}

const sha256 = (b: Buffer): string => `sha256:${crypto.createHash('sha256').update(b).digest('hex')}`;

function tempDir(t: { teardown(fn: () => void): void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-images-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('the control-plane image: a valid OCI layout, the right entrypoint and user, every digest matching; rebuilt to the same bytes', async (t) => {
  t.timeout(170_000);
  const first = tempDir(t);
  const [built] = await buildImages({ outDir: first, images: ['controlPlane'], tag: 'test' });
  t.is(built!.reference, 'ghcr.io/trellis-mesh/trellis/control-plane:test');
  const files = await readTar(built!.file);
  t.deepEqual(JSON.parse(files.get('oci-layout')!.data.toString()), { imageLayoutVersion: '1.0.0' });
  const index = JSON.parse(files.get('index.json')!.data.toString()) as {
    schemaVersion: number;
    manifests: Descriptor[];
  };
  t.is(index.schemaVersion, 2);
  t.is(index.manifests.length, 1);
  const desc = index.manifests[0]!;
  t.is(desc.mediaType, MEDIA_TYPES.manifest);
  t.is(desc.annotations?.['io.containerd.image.name'], 'ghcr.io/trellis-mesh/trellis/control-plane:test');
  t.is(desc.annotations?.['org.opencontainers.image.ref.name'], 'test');
  const blob = (d: Descriptor): Buffer => {
    const data = files.get(`blobs/sha256/${d.digest.slice('sha256:'.length)}`)?.data;
    if (!data) throw new Error(`blob ${d.digest} is missing`);
    t.is(sha256(data), d.digest, `blob ${d.digest}: digest`);
    t.is(data.length, d.size, `blob ${d.digest}: size`);
    return data;
  };
  const manifest = JSON.parse(blob(desc).toString()) as {
    schemaVersion: number;
    config: Descriptor;
    layers: Descriptor[];
  };
  t.is(manifest.schemaVersion, 2);
  t.is(manifest.config.mediaType, MEDIA_TYPES.config);
  const config = JSON.parse(blob(manifest.config).toString()) as {
    architecture: string;
    os: string;
    config: { User: string; Entrypoint: string[]; Cmd: string[]; Env: string[] };
    rootfs: { type: string; diff_ids: string[] };
  };
  t.is(config.os, 'linux');
  t.is(config.config.User, '65532:65532');
  t.deepEqual(config.config.Entrypoint, ['/usr/local/bin/trellis']);
  t.deepEqual(config.config.Cmd, ['control-plane']);
  // Large freed buffers go back to the kernel (deploy/images/runtime-env.ts); the Dockerfile sets the same.
  t.true(config.config.Env.includes('MALLOC_MMAP_THRESHOLD_=131072'), config.config.Env.join(' '));
  t.regex(
    fs.readFileSync(path.join('deploy', 'images', 'control-plane.Dockerfile'), 'utf8'),
    /^ENV .*\bMALLOC_MMAP_THRESHOLD_=131072\b/m,
  );
  t.deepEqual(
    config.rootfs.diff_ids,
    manifest.layers.map((l) => l.digest),
  );
  t.is(manifest.layers.length, 2);
  const layerFiles = new Map<string, { type: string; data: Buffer; mode: number; linkname?: string }>();
  for (const layer of manifest.layers) {
    t.is(layer.mediaType, MEDIA_TYPES.layer);
    const file = path.join(first, 'layer.tar');
    fs.writeFileSync(file, blob(layer));
    for (const [name, entry] of await readTar(file)) layerFiles.set(name, entry);
    fs.rmSync(file);
  }
  t.true(layerFiles.get('usr/local/bin/node')!.data.equals(fs.readFileSync(fs.realpathSync(process.execPath))));
  t.is(layerFiles.get('usr/local/bin/node')!.mode, 0o755);
  t.regex(
    layerFiles.get('usr/local/bin/trellis')!.data.toString(),
    /^#!\/usr\/local\/bin\/node\nimport\('\/app\/dist\/control-plane\/main\.js'\)/,
  );
  t.truthy(layerFiles.get('app/dist/control-plane/main.js'));
  t.truthy(layerFiles.get('app/node_modules/@grpc/grpc-js/package.json'));
  t.falsy(layerFiles.get('app/node_modules/ava/package.json'), 'dev dependencies stay out');
  t.is(layerFiles.get('tmp/')!.mode, 0o1777);
  t.regex(layerFiles.get('etc/passwd')!.data.toString(), /^nonroot:x:65532:65532:/m);

  // Same files, same bytes: another build into another folder gives the same tarball.
  const second = tempDir(t);
  const [again] = await buildImages({ outDir: second, images: ['controlPlane'], tag: 'test' });
  t.is(again!.manifest.digest, built!.manifest.digest);
  t.is(sha256(fs.readFileSync(again!.file)), sha256(fs.readFileSync(built!.file)));
});

test('a layer does not depend on the order of its entries; a path listed twice is refused', async (t) => {
  const dir = tempDir(t);
  const store = new BlobStore(dir);
  const entries: LayerEntry[] = [
    { type: 'file', path: '/b/c.txt', mode: 0o644, content: Buffer.from('c') },
    { type: 'symlink', path: '/a/link', target: '../b/c.txt' },
    { type: 'directory', path: '/tmp', mode: 0o1777 },
    { type: 'file', path: '/a/x', mode: 0o755, content: Buffer.from('#!/bin/sh\n') },
  ];
  const one = await store.putLayer(entries);
  const two = await store.putLayer([...entries].reverse());
  t.is(one.digest, two.digest);
  const names = [...(await readTar(store.pathOf(one.digest))).keys()];
  t.deepEqual(names, ['a/', 'a/link', 'a/x', 'b/', 'b/c.txt', 'tmp/']);
  await t.throwsAsync(
    store.putLayer([...entries, { type: 'file', path: '/a/x', mode: 0o644, content: Buffer.from('') }]),
    {
      message: 'layer entry /a/x: listed twice',
    },
  );
});
