/**
 * The one place that names Trellis's container images and their default tag.
 *
 * The injector, `trellis inject`, `trellis install`, the Helm chart and `npm run images` all import from
 * here, so an image is never spelled twice. An image reference is `<registry>/<name>:<tag>`, e.g.
 * `ghcr.io/trellis-mesh/trellis/proxy:0.1.0`; the registry may be empty (`trellis/proxy:0.1.0`).
 */
import { readFileSync } from 'node:fs';

/** Repository names of the three images (without registry or tag). */
export const IMAGE_NAMES = {
  /** `trellis control-plane`: xDS, CA, webhooks. */
  controlPlane: 'trellis/control-plane',
  /** The Envoy template's sidecar: an Envoy base image plus Node and Trellis (`trellis agent` starts Envoy). */
  proxy: 'trellis/proxy',
  /** The gRPC template's sidecar: Node and Trellis only (`trellis agent --proxy-type grpc`). */
  agent: 'trellis/agent',
} as const;

export type ImageKey = keyof typeof IMAGE_NAMES;

/** Default registry prefix, without a trailing slash. */
export const DEFAULT_REGISTRY = 'ghcr.io/trellis-mesh';

/** Reads `version` from this package's package.json (two levels up from dist/, one from the sources). */
function packageVersion(): string {
  for (const relative of ['../package.json', '../../package.json']) {
    let text: string;
    try {
      text = readFileSync(new URL(relative, import.meta.url), 'utf8');
    } catch {
      continue;
    }
    const parsed = JSON.parse(text) as { name?: unknown; version?: unknown };
    if (parsed.name === 'trellis-mesh' && typeof parsed.version === 'string') return parsed.version;
  }
  throw new Error('injector/images.ts: package.json of trellis-mesh not found next to the sources or dist/');
}

/** Default tag of every image: the package version (package.json `version`). */
export const DEFAULT_TAG: string = packageVersion();

export interface ImageOptions {
  /** Registry prefix, e.g. `ghcr.io/trellis-mesh` or `localhost:5000`; empty for none. Default {@link DEFAULT_REGISTRY}. */
  registry?: string;
  /** Tag; default {@link DEFAULT_TAG}. */
  tag?: string;
}

/** `<registry>/<name>:<tag>` of one image (no registry part when the registry is empty). */
export function imageRef(key: ImageKey, options: ImageOptions = {}): string {
  const registry = (options.registry ?? DEFAULT_REGISTRY).replace(/\/+$/, '');
  const tag = options.tag ?? DEFAULT_TAG;
  const name = IMAGE_NAMES[key];
  return `${registry === '' ? '' : `${registry}/`}${name}:${tag}`;
}
