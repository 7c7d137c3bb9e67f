// Defaults the validator and the model share (crds/rules/ is the leaf both import; it imports nothing).

/** The cluster domain of Service FQDNs (`<name>.<namespace>.svc.<domain>`). */
export const DEFAULT_DOMAIN = 'cluster.local';

/**
 * Where mesh-wide policy lives: DestinationRules there apply to every namespace (after the client's and
 * the Service's), and a PeerAuthentication there without a selector is the mesh's.
 */
export const DEFAULT_ROOT_NAMESPACE = 'trellis-system';
