// Explicitly subscribed Listeners that a proxy's config does not hold, logged once per stream and name.
//
// Listener names come from the application, not from config we sent: a proxyless client's `xds:///` target,
// an A36 server's bind address (`grpc/server?xds.resource.listening_address=<ip>:<port>`). An absent one is a
// misconfiguration that the client sees only as "does not exist" (a gRPC server stops serving after its
// resource timer, with nothing in its own logs that names the cause), so it gets a warning here. Other
// types are left out: their names come from our own config (RDS/CDS/EDS names the client read in what we
// sent), and are absent only while a client catches up with a change.
import { TypeUrl } from '../envoy/protos.js';
import type { Logger } from '../logger.js';
import type { EncodedSet } from './resource-cache.js';

export class AbsentListeners {
  /** Names already logged on this stream. */
  private readonly warned = new Set<string>();

  /** Warns about each name of `names` (a stream's subscription of `set`'s type) that `set` lacks, once. */
  check(log: Logger, proxy: string | undefined, names: ReadonlySet<string>, set: EncodedSet): void {
    if (set.typeUrl !== TypeUrl.Listener || names.size === 0) return;
    for (const name of names) {
      if (set.byName.has(name) || this.warned.has(name)) continue;
      this.warned.add(name);
      log.warn(
        { proxy, type: 'Listener', name },
        'subscribed Listener matches nothing in this proxy config; the client sees it as nonexistent',
      );
    }
  }
}
