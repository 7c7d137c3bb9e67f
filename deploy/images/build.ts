// `npm run images`: the three Trellis images, and the example application's, as OCI image layout tarballs, built here without Docker or a
// registry (deploy/images/*.Dockerfile build the same images with Docker, for users). Each tarball
// (`<cache>/<name>-<tag>.oci.tar`, cache ~/.cache/trellis/images or $TRELLIS_IMAGES_CACHE) is one image,
// named by the annotation io.containerd.image.name: `ctr -n k8s.io images import FILE` loads it.
//
//   npm run images                         all four, tag = the package version
//   npm run images -- agent --tag dev      only these, another tag
//
// Layers are shared: runtime (Node from this machine and its libraries), app (dist/ and the production
// node_modules), and for the proxy iptables. Built from the same files they have the same digests.
// The examples image (examples/kubernetes/apps, compiled into dist/examples by tsconfig.build.json) is the
// runtime and app layers with another entrypoint: it adds no layer.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_REGISTRY, DEFAULT_TAG, imageRef, type ImageKey } from '../../injector/images.js';
import {
  appEntries,
  iptablesEntries,
  NODE_PATH,
  NONROOT_UID,
  PROXY_UID,
  runtimeEntries,
  TRELLIS_PATH,
  APP_DIR,
} from './layers.js';
import { CONTROL_PLANE_MALLOC_ENV } from './runtime-env.js';
import { BlobStore, putImage, writeLayoutTar, type Descriptor, type ImageConfig, type LayerEntry } from './oci.js';

/** The product's images (injector/images.ts) and the example application's, which the product never names. */
export type BuildKey = ImageKey | 'examples';
export const EXAMPLES_IMAGE_NAME = 'trellis/examples';
/** The example apps' entry in the image: `<image> frontend|reviews|ratings|details|call …`. */
export const EXAMPLES_MAIN = `${APP_DIR}/dist/examples/kubernetes/apps/main.js`;

export const IMAGE_KEYS: readonly BuildKey[] = ['controlPlane', 'proxy', 'agent', 'examples'];

type LayerName = 'runtime' | 'app' | 'iptables';

interface ImageSpec {
  readonly layers: readonly LayerName[];
  readonly config: ImageConfig;
}

const ENV = ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'NODE_ENV=production'];
/** The control plane's environment adds the allocator setting of runtime-env.ts. */
const CONTROL_PLANE_ENV = [...ENV, ...Object.entries(CONTROL_PLANE_MALLOC_ENV).map(([k, v]) => `${k}=${v}`)];
const LABELS = { 'org.opencontainers.image.source': 'https://github.com/trellis-mesh/trellis' };

/** What each image is: its layers and its config (entrypoint `trellis`, the user it runs as). */
export const IMAGE_SPECS: Readonly<Record<BuildKey, ImageSpec>> = {
  controlPlane: {
    layers: ['runtime', 'app'],
    config: {
      user: `${NONROOT_UID}:${NONROOT_UID}`,
      entrypoint: [TRELLIS_PATH],
      cmd: ['control-plane'],
      env: CONTROL_PLANE_ENV,
      workingDir: APP_DIR,
      exposedPorts: [15012, 15014, 15017],
      labels: { ...LABELS, 'org.opencontainers.image.title': 'trellis control plane' },
    },
  },
  proxy: {
    // Without Docker there is no Envoy base image here: the local proxy image has Node, Trellis and
    // iptables (the init container), not Envoy. proxy.Dockerfile adds them to envoyproxy/envoy.
    layers: ['runtime', 'app', 'iptables'],
    config: {
      user: `${PROXY_UID}:${PROXY_UID}`,
      entrypoint: [TRELLIS_PATH],
      cmd: ['agent'],
      env: ENV,
      workingDir: APP_DIR,
      labels: {
        ...LABELS,
        'org.opencontainers.image.title': 'trellis proxy (agent + iptables; no Envoy in the local build)',
      },
    },
  },
  agent: {
    layers: ['runtime', 'app'],
    config: {
      user: `${PROXY_UID}:${PROXY_UID}`,
      entrypoint: [TRELLIS_PATH],
      cmd: ['agent', '--proxy-type', 'grpc'],
      env: ENV,
      workingDir: APP_DIR,
      labels: { ...LABELS, 'org.opencontainers.image.title': 'trellis agent (proxyless gRPC)' },
    },
  },
  examples: {
    // UID 1337 like the agent: the agent writes key.pem readable by its own user only.
    layers: ['runtime', 'app'],
    config: {
      user: `${PROXY_UID}:${PROXY_UID}`,
      entrypoint: [NODE_PATH, EXAMPLES_MAIN],
      cmd: ['frontend'],
      env: ENV,
      workingDir: APP_DIR,
      exposedPorts: [8080, 9080],
      labels: { ...LABELS, 'org.opencontainers.image.title': 'trellis example application (examples/kubernetes)' },
    },
  },
};

/** `<registry>/<name>:<tag>` of any image this script builds. */
export function buildRef(key: BuildKey, options: { tag: string; registry: string }): string {
  if (key !== 'examples') return imageRef(key, options);
  const registry = options.registry.replace(/\/+$/, '');
  return `${registry === '' ? '' : `${registry}/`}${EXAMPLES_IMAGE_NAME}:${options.tag}`;
}

export function imagesCacheDir(): string {
  return process.env.TRELLIS_IMAGES_CACHE ?? path.join(os.homedir(), '.cache', 'trellis', 'images');
}

export interface BuildOptions {
  /** The package root (dist/, node_modules/, package-lock.json); this repository by default. */
  readonly root?: string;
  /** Where blobs and tarballs go; imagesCacheDir() by default. */
  readonly outDir?: string;
  readonly images?: readonly BuildKey[];
  readonly tag?: string;
  readonly registry?: string;
  /** Progress lines; nothing by default. */
  readonly log?: (line: string) => void;
}

export interface BuiltImage {
  readonly key: BuildKey;
  readonly reference: string;
  readonly file: string;
  readonly manifest: Descriptor;
}

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

function mb(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

/** A byte counter that logs every 2 s while something big is written. */
function progress(log: (line: string) => void, what: string): { onBytes: (n: number) => void; done: () => number } {
  let bytes = 0;
  const started = Date.now();
  const timer = setInterval(() => log(`  … ${what}: ${mb(bytes)}`), 2_000);
  timer.unref();
  return {
    onBytes: (n) => (bytes += n),
    done: () => {
      clearInterval(timer);
      return Date.now() - started;
    },
  };
}

/** Builds the images; returns where each tarball is. */
export async function buildImages(options: BuildOptions = {}): Promise<BuiltImage[]> {
  const root = options.root ?? repoRoot;
  const outDir = options.outDir ?? imagesCacheDir();
  const log = options.log ?? (() => undefined);
  const tag = options.tag ?? DEFAULT_TAG;
  const registry = options.registry ?? DEFAULT_REGISTRY;
  const keys = options.images ?? IMAGE_KEYS;
  const store = new BlobStore(outDir);
  const sources: Record<LayerName, () => LayerEntry[]> = {
    runtime: () => runtimeEntries(),
    app: () => appEntries(root),
    iptables: () => iptablesEntries(),
  };
  const layers = new Map<LayerName, Descriptor>();
  const layer = async (name: LayerName): Promise<Descriptor> => {
    const known = layers.get(name);
    if (known) return known;
    const entries = sources[name]();
    const p = progress(log, `layer ${name}`);
    const d = await store.putLayer(entries, p.onBytes);
    log(`layer ${name}: ${entries.length} entries, ${mb(d.size)}, ${d.digest.slice(0, 19)}… (${p.done()} ms)`);
    layers.set(name, d);
    return d;
  };
  const built: BuiltImage[] = [];
  for (const key of keys) {
    const spec = IMAGE_SPECS[key];
    const reference = buildRef(key, { tag, registry });
    if (key === 'examples' && !fs.existsSync(path.join(root, EXAMPLES_MAIN.replace(`${APP_DIR}/`, '')))) {
      throw new Error(`${EXAMPLES_MAIN.replace(`${APP_DIR}/`, '')} is missing: run \`npm run build\` first`);
    }
    const descriptors: Descriptor[] = [];
    for (const name of spec.layers) descriptors.push(await layer(name));
    const manifest = putImage(store, descriptors, spec.config, reference);
    const file = path.join(outDir, `${reference.slice(reference.lastIndexOf('/') + 1).replace(':', '-')}.oci.tar`);
    const p = progress(log, path.basename(file));
    await writeLayoutTar(store, manifest, file, p.onBytes);
    log(
      `image ${reference}: ${file} (${mb(fs.statSync(file).size)}, manifest ${manifest.digest.slice(0, 19)}…, ${p.done()} ms)`,
    );
    built.push({ key, reference, file, manifest });
  }
  return built;
}

function parseArgs(argv: readonly string[]): BuildOptions {
  const images: BuildKey[] = [];
  let tag: string | undefined;
  let registry: string | undefined;
  const byName = new Map<string, BuildKey>([
    ['control-plane', 'controlPlane'],
    ['proxy', 'proxy'],
    ['agent', 'agent'],
    ['examples', 'examples'],
  ]);
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--tag') tag = argv[++i];
    else if (arg === '--registry') registry = argv[++i];
    else {
      const key = byName.get(arg);
      if (!key)
        throw new Error(`unknown image "${arg}" (control-plane, proxy, agent, examples; options --tag, --registry)`);
      images.push(key);
    }
  }
  return {
    ...(images.length ? { images } : {}),
    ...(tag ? { tag } : {}),
    ...(registry !== undefined ? { registry } : {}),
  };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const started = Date.now();
  const log = (line: string): void => void process.stdout.write(`${line}\n`);
  try {
    const options = parseArgs(process.argv.slice(2));
    log(`building into ${imagesCacheDir()}`);
    const built = await buildImages({ ...options, log });
    log(
      `done in ${((Date.now() - started) / 1000).toFixed(1)} s; load one with: ctr -n k8s.io images import ${built[0]?.file ?? 'FILE'}`,
    );
  } catch (err) {
    process.stderr.write(`npm run images: ${(err as Error).message}\n`);
    process.exitCode = 1;
  }
}
