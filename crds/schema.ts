// The OpenAPI v3 schemas of the VirtualService, DestinationRule, PeerAuthentication and AuthorizationPolicy CRDs, built once in TypeScript. The same
// objects are written to crds/*.yaml by crds/generate.ts (what the API server enforces) and compiled by the
// validator (what `trellis validate`, the file source and the webhook enforce), so the two never drift.
//
// Every CEL rule (`x-kubernetes-validations`) is evaluated by the validator from its own text with a CEL
// library (schema/cel.ts), because neither the CLI nor the file source has an API server to run CEL; a
// TypeScript twin decides instead only where the two must differ (celWithTwin). The schema language is in
// schema/language.ts and the patterns in schema/patterns.ts; each CRD's spec has its own module.
//
// Structural-schema rules that shape this file (apiextensions.k8s.io/v1):
// - every node has a `type`; `properties` and `additionalProperties` never meet on one node; no $ref;
// - CEL cost is estimated from the largest possible input, so every list, map and string that a rule (or a
//   rule below it) iterates has maxItems / maxProperties / maxLength;
// - no `additionalProperties: false`: the API server prunes or (kubectl's default strict field validation)
//   rejects unknown fields itself; the validator adds `additionalProperties: false` to its own copy.
import { API_VERSION, GROUP, SECURITY_API_VERSION, SECURITY_GROUP, VERSION } from './types.js';
export * from './schema/language.js';
export * from './schema/patterns.js';
import { obj, str, list, type JSONSchemaProps } from './schema/language.js';
import { virtualServiceSpec } from './schema/virtualservice.js';
import { destinationRuleSpec } from './schema/destinationrule.js';
import { peerAuthenticationSpec } from './schema/peerauthentication.js';
import { authorizationPolicySpec } from './schema/authorizationpolicy.js';
import { serviceEntrySpec } from './schema/serviceentry.js';
import { sidecarSpec } from './schema/sidecar.js';

// ---------------------------------------------------------------------------------------------------
// Status and the CRDs.

const status: JSONSchemaProps = obj('Written by the Trellis control plane.', {
  conditions: list(
    'Accepted: True when the resource is valid and in use. Programmed: True when every connected proxy using it ACKed the config made from it.',
    obj(
      'A condition.',
      {
        type: str('Condition type.', { maxLength: 316 }),
        status: { type: 'string', description: 'True, False or Unknown.', enum: ['True', 'False', 'Unknown'] },
        reason: str('Machine-readable reason.', { maxLength: 1024 }),
        message: str('Human-readable message.', { maxLength: 32768 }),
        lastTransitionTime: { type: 'string', description: 'When status last changed.', format: 'date-time' },
        observedGeneration: {
          type: 'integer',
          format: 'int64',
          description: 'Generation this condition is about.',
          minimum: 0,
        },
      },
      { required: ['type', 'status'] },
    ),
    16,
    { 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['type'] },
  ),
  observedGeneration: { type: 'integer', format: 'int64', description: 'Generation last processed.', minimum: 0 },
});

function root(kind: string, spec: JSONSchemaProps, apiVersion = API_VERSION): JSONSchemaProps {
  return obj(
    `${kind} (${apiVersion}).`,
    {
      apiVersion: { type: 'string', description: 'APIVersion of the object.' },
      kind: { type: 'string', description: 'Kind of the object.' },
      metadata: { type: 'object' },
      spec,
      status,
    },
    { required: ['spec'] },
  );
}

export const virtualServiceSchema: JSONSchemaProps = root('VirtualService', virtualServiceSpec);
export const destinationRuleSchema: JSONSchemaProps = root('DestinationRule', destinationRuleSpec);
export const peerAuthenticationSchema: JSONSchemaProps = root(
  'PeerAuthentication',
  peerAuthenticationSpec,
  SECURITY_API_VERSION,
);
export const authorizationPolicySchema: JSONSchemaProps = root(
  'AuthorizationPolicy',
  authorizationPolicySpec,
  SECURITY_API_VERSION,
);

export const serviceEntrySchema: JSONSchemaProps = root('ServiceEntry', serviceEntrySpec);
export const sidecarSchema: JSONSchemaProps = root('Sidecar', sidecarSpec);

export type RoutingKind = 'VirtualService' | 'DestinationRule';
/** Every kind of crds/: the routing kinds and the security kinds. */
export type CrdKind = RoutingKind | 'PeerAuthentication' | 'AuthorizationPolicy' | 'ServiceEntry' | 'Sidecar';

const SCHEMAS: Record<CrdKind, JSONSchemaProps> = {
  VirtualService: virtualServiceSchema,
  DestinationRule: destinationRuleSchema,
  PeerAuthentication: peerAuthenticationSchema,
  AuthorizationPolicy: authorizationPolicySchema,
  ServiceEntry: serviceEntrySchema,
  Sidecar: sidecarSchema,
};

export function schemaOf(kind: CrdKind): JSONSchemaProps {
  return SCHEMAS[kind];
}

/** The apiVersion objects of a kind carry. */
export function apiVersionOf(kind: CrdKind): string {
  return kind === 'PeerAuthentication' || kind === 'AuthorizationPolicy' ? SECURITY_API_VERSION : API_VERSION;
}

interface CrdNames {
  kind: CrdKind;
  group: string;
  plural: string;
  singular: string;
  shortName: string;
  category: string;
  column: { name: string; jsonPath: string; description: string };
}

const NAMES: Record<CrdKind, CrdNames> = {
  VirtualService: {
    kind: 'VirtualService',
    group: GROUP,
    plural: 'virtualservices',
    singular: 'virtualservice',
    shortName: 'vs',
    category: 'trellis-networking',
    column: { name: 'Hosts', jsonPath: '.spec.hosts', description: 'The hosts the routes apply to' },
  },
  DestinationRule: {
    kind: 'DestinationRule',
    group: GROUP,
    plural: 'destinationrules',
    singular: 'destinationrule',
    shortName: 'dr',
    category: 'trellis-networking',
    column: { name: 'Host', jsonPath: '.spec.host', description: 'The host the policies apply to' },
  },
  PeerAuthentication: {
    kind: 'PeerAuthentication',
    group: SECURITY_GROUP,
    plural: 'peerauthentications',
    singular: 'peerauthentication',
    shortName: 'pa',
    category: 'trellis-security',
    column: { name: 'Mode', jsonPath: '.spec.mtls.mode', description: 'The mutual TLS mode of the workloads' },
  },
  AuthorizationPolicy: {
    kind: 'AuthorizationPolicy',
    group: SECURITY_GROUP,
    plural: 'authorizationpolicies',
    singular: 'authorizationpolicy',
    shortName: 'ap',
    category: 'trellis-security',
    column: { name: 'Action', jsonPath: '.spec.action', description: 'ALLOW (the default), DENY or AUDIT' },
  },
  ServiceEntry: {
    kind: 'ServiceEntry',
    group: GROUP,
    plural: 'serviceentries',
    singular: 'serviceentry',
    shortName: 'se',
    category: 'trellis-networking',
    column: { name: 'Hosts', jsonPath: '.spec.hosts', description: 'The hosts of the service' },
  },
  Sidecar: {
    kind: 'Sidecar',
    group: GROUP,
    plural: 'sidecars',
    singular: 'sidecar',
    shortName: 'sdc',
    category: 'trellis-networking',
    column: {
      name: 'Selector',
      jsonPath: '.spec.workloadSelector.labels',
      description: 'The Pods it applies to (none: the namespace default)',
    },
  },
};

/** The plural (resource) name of a kind, as in API paths. */
export function pluralOf(kind: CrdKind): string {
  return NAMES[kind].plural;
}

/** The CustomResourceDefinition object of a kind. */
export function customResourceDefinition(kind: CrdKind): Record<string, unknown> {
  const n = NAMES[kind];
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: {
      name: `${n.plural}.${n.group}`,
      labels: { 'app.kubernetes.io/name': 'trellis', 'app.kubernetes.io/part-of': 'trellis' },
    },
    spec: {
      group: n.group,
      scope: 'Namespaced',
      names: {
        kind: n.kind,
        listKind: `${n.kind}List`,
        plural: n.plural,
        singular: n.singular,
        shortNames: [n.shortName],
        categories: ['trellis', n.category],
      },
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: [
            { ...n.column, type: 'string' },
            {
              name: 'Accepted',
              type: 'string',
              jsonPath: '.status.conditions[?(@.type=="Accepted")].status',
              description: 'Whether the control plane accepted the resource',
            },
            {
              name: 'Programmed',
              type: 'string',
              jsonPath: '.status.conditions[?(@.type=="Programmed")].status',
              description: 'Whether every connected proxy using the resource took the config made from it',
            },
            { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
          ],
          schema: { openAPIV3Schema: schemaOf(kind) },
        },
      ],
    },
  };
}
