// Host names in routing resources. A resource in namespace `ns` may name a Service by its short name, and
// Trellis resolves four forms (Istio resolves only the first; we accept the forms kubectl users type):
//   reviews                          → reviews.ns.svc.cluster.local
//   reviews.other                    → reviews.other.svc.cluster.local
//   reviews.other.svc                → reviews.other.svc.cluster.local
//   reviews.other.svc.cluster.local  → unchanged (an FQDN)
// Any other name with three or more labels is taken as written. The domain is the trust/cluster domain
// (`cluster.local` unless configured). Wildcards (`*`, `*.example.com`) are kept as written.
import { DEFAULT_DOMAIN } from './defaults.js';

export { DEFAULT_DOMAIN };

export function serviceFqdn(name: string, namespace: string, domain = DEFAULT_DOMAIN): string {
  return `${name}.${namespace}.svc.${domain}`;
}

/** The FQDN a host written in namespace `namespace` refers to. */
export function qualifyHost(host: string, namespace: string, domain = DEFAULT_DOMAIN): string {
  const h = host.toLowerCase().replace(/\.$/, '');
  if (h.startsWith('*')) return h;
  const labels = h.split('.');
  if (labels.length === 1) return serviceFqdn(h, namespace, domain);
  if (labels.length === 2) return `${h}.svc.${domain}`;
  if (labels.length === 3 && labels[2] === 'svc') return `${h}.${domain}`;
  return h;
}

/**
 * The names a client in `clientNamespace` may use for a Service (the domains of its virtual host, without
 * ports): the FQDN, `name.ns.svc`, `name.ns`, and the bare `name` only from the Service's own namespace.
 */
export function hostAliases(
  name: string,
  namespace: string,
  clientNamespace: string,
  domain = DEFAULT_DOMAIN,
): string[] {
  const aliases = [serviceFqdn(name, namespace, domain), `${name}.${namespace}.svc`, `${name}.${namespace}`];
  if (clientNamespace === namespace) aliases.push(name);
  return aliases;
}
