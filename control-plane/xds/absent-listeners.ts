// Explicitly subscribed Listeners that a proxy's config does not hold, logged once per stream and name.
//
// Listener names come from the application, not from config we sent: a proxyless client's `xds:///` target,
// an A36 server's bind address (`grpc/server?xds.resource.listening_address=<ip>:<port>`). An absent one is a
// misconfiguration that the client sees only as "does not exist" (a gRPC server stops serving after its
// resource timer, with nothing in its own logs that names the cause), so it gets a warning here. Other
// types are left out: their names come from our own config (RDS/CDS/EDS names the client read in what we
// sent), and are absent only while a client catches up with a change. Except Secrets named
// `kubernetes://…` (a DestinationRule's credentialName): the control plane serves them only to a proxy whose
// certificate proves the Secret's namespace, so an absent one means no usable Secret of that name there, or
// a stream that is not authenticated - and the proxy's TLS to that destination waits for it.
import { TypeUrl } from '../envoy/protos.js';
import type { Logger } from '../logger.js';
import type { EncodedSet } from './resource-cache.js';

export class AbsentListeners {
  /** Names already logged on this stream. */
  private readonly warned = new Set<string>();

  /** Warns about each name of `names` (a stream's subscription of `set`'s type) that `set` lacks, once. */
  check(log: Logger, proxy: string | undefined, names: ReadonlySet<string>, set: EncodedSet): void {
    if (names.size === 0) return;
    if (set.typeUrl === TypeUrl.Secret) {
      this.checkCredentials(log, proxy, names, set);
      return;
    }
    if (set.typeUrl !== TypeUrl.Listener) return;
    for (const name of names) {
      if (set.byName.has(name) || this.warned.has(name)) continue;
      this.warned.add(name);
      log.warn(
        { proxy, type: 'Listener', name },
        'subscribed Listener matches nothing in this proxy config; the client sees it as nonexistent',
      );
    }
  }

  /** Subscribed `kubernetes://` Secrets that the proxy's config lacks, once per stream and name. */
  private checkCredentials(log: Logger, proxy: string | undefined, names: ReadonlySet<string>, set: EncodedSet): void {
    for (const name of names) {
      if (!name.startsWith('kubernetes://') || set.byName.has(name) || this.warned.has(name)) continue;
      this.warned.add(name);
      log.warn(
        { proxy, type: 'Secret', name },
        "subscribed Secret is not served to this proxy: no usable Secret of that name that a DestinationRule names in the proxy's namespace, or the stream is not authenticated (Secrets go only to proxies on the TLS port); its TLS waits for it",
      );
    }
  }
}
