// The PeerAuthentication spec schema (security.trellis.dev/v1alpha1; Istio security/v1 field names).
import { type JSONSchemaProps, cel, celString, isObject, labels, map, obj } from './language.js';
import { PEER_MTLS_MODES, PORT_KEY_PATTERN } from './patterns.js';

// ---------------------------------------------------------------------------------------------------
// PeerAuthentication

export const PORT_KEY_RE = new RegExp(PORT_KEY_PATTERN);

export const peerMutualTls = (description: string): JSONSchemaProps =>
  obj(description, {
    mode: {
      type: 'string',
      description:
        'UNSET (inherit from the level above), DISABLE (plaintext only), PERMISSIVE (mTLS and plaintext) or STRICT (mTLS only).',
      enum: [...PEER_MTLS_MODES],
    },
  });

/** True when the selector has at least one label (an empty selector selects the whole namespace). */
export function hasMatchLabels(self: unknown): boolean {
  const selector = isObject(self) ? self.selector : undefined;
  const labels = isObject(selector) ? selector.matchLabels : undefined;
  return isObject(labels) && Object.keys(labels).length > 0;
}

export const peerAuthenticationSpec = obj(
  'Inbound mutual TLS of workloads. Field names follow Istio security/v1 PeerAuthentication.',
  {
    selector: obj('The workloads (Pods) the policy applies to; absent: the whole namespace.', {
      matchLabels: labels('Labels a Pod must all have.'),
    }),
    mtls: peerMutualTls('Mutual TLS of the selected workloads.'),
    portLevelMtls: map(
      'Mutual TLS per container (target) port, overriding mtls; only with a selector; if present, not empty (Istio).',
      peerMutualTls('Mutual TLS of the port.'),
      64,
      {
        minProperties: 1,
        'x-kubernetes-validations': [
          cel(
            `self.all(k, k.matches(${celString(PORT_KEY_PATTERN)}) && int(k) <= 65535)`,
            'keys must be port numbers 1-65535',
          ),
        ],
      },
    ),
  },
  {
    'x-kubernetes-validations': [
      cel(
        '!has(self.portLevelMtls) || (has(self.selector) && has(self.selector.matchLabels) && self.selector.matchLabels.size() > 0)',
        'requires a selector with matchLabels',
        '.portLevelMtls',
      ),
    ],
  },
);
