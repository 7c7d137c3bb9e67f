// The control plane's side of `trellis authz check` (monitoring.ts serves it as `/debug/authz`, loopback
// only): reads the live snapshot and what each connected proxy was sent, and hands them to the pure
// check.ts. Only in mesh mode (`--config-dir` or Kubernetes); loaded when that mode starts.
import type { Listener } from '../envoy/gen/envoy/config/listener/v3/listener_pb.js';
import { decodeAny, TypeUrl, unpackAny } from '../envoy/protos.js';
import type { MeshSnapshot } from '../model/snapshot.js';
import type { MeshConfig } from '../translate/context.js';
import type { SnapshotSource } from '../xds/generator.js';
import type { ProxyInfo } from '../xds/node.js';
import { AuthzCheckError, checkAuthz, type AuthzAnswer, type SentConfig } from './check.js';

/** A connected stream as the checker reads it: its proxy and the encoded Listeners it was last handed. */
export interface SentStream {
  readonly proxy: ProxyInfo | undefined;
  readonly config:
    | { readonly sets: ReadonlyMap<string, { readonly byName: ReadonlyMap<string, { readonly any: Uint8Array }> }> }
    | undefined;
}

export interface AuthzCheckerOptions {
  readonly source: SnapshotSource<MeshSnapshot>;
  readonly mesh: MeshConfig;
  readonly streams: () => Iterable<SentStream>;
}

export { AuthzCheckError };

export class AuthzChecker {
  constructor(private readonly options: AuthzCheckerOptions) {}

  private sent(proxyId: string): SentConfig | undefined {
    for (const stream of this.options.streams()) {
      if (stream.proxy?.id !== proxyId) continue;
      const set = stream.config?.sets.get(TypeUrl.Listener);
      if (!set) continue;
      const listeners = [...set.byName.values()].map((r) => unpackAny(decodeAny(r.any)) as Listener);
      return { proxy: stream.proxy, listeners };
    }
    return undefined;
  }

  /** `/debug/authz?from=…&to=…&path=…&method=…&namespace=…&sourceIp=…&header=name:value`. */
  check(params: URLSearchParams): AuthzAnswer {
    if (!this.options.source.ready()) throw new AuthzCheckError(503, 'the mesh source has not finished its first read');
    const to = params.get('to');
    if (!to) throw new AuthzCheckError(400, 'to is required (a Service: name.namespace[:port])');
    const from = params.get('from') ?? undefined;
    if (from !== undefined && !/^spiffe:\/\/[^/]+\/ns\/[^/]+\/sa\/[^/]+$/.test(from))
      throw new AuthzCheckError(
        400,
        `from must be a SPIFFE ID spiffe://<trust domain>/ns/<namespace>/sa/<name>: ${from}`,
      );
    const headers: Record<string, string> = {};
    for (const h of params.getAll('header')) {
      const colon = h.indexOf(':', 1);
      if (colon < 0) throw new AuthzCheckError(400, `header must be name:value: ${h}`);
      headers[h.slice(0, colon).trim().toLowerCase()] = h.slice(colon + 1).trim();
    }
    const opt = (name: string) => params.get(name) ?? undefined;
    const path = opt('path');
    const method = opt('method');
    const namespace = opt('namespace');
    const sourceIp = opt('sourceIp');
    return checkAuthz(
      { snapshot: this.options.source.current(), mesh: this.options.mesh, sent: (id) => this.sent(id) },
      {
        to,
        ...(from !== undefined ? { from } : {}),
        ...(path !== undefined ? { path } : {}),
        ...(method !== undefined ? { method } : {}),
        ...(namespace !== undefined ? { namespace } : {}),
        ...(sourceIp !== undefined ? { sourceIp } : {}),
        headers,
      },
    );
  }
}
