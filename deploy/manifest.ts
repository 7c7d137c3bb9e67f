// The objects of a Trellis installation, as plain JSON: the one source of deploy/install.yaml, of the Helm
// chart's templates (deploy/helm.ts) and of `trellis install`. Pure: the same options give the same objects.
//
// Fields the Helm chart takes from its values are given through `InstallOptions` as plain values here; the
// chart renderer passes sentinel strings in their place and swaps them for template expressions.
import { customResourceDefinition, pluralOf, type CrdKind } from '../crds/schema.js';
import { NEVER_INJECTED_NAMESPACES } from '../injector/annotations.js';
import { DEFAULT_REGISTRY, DEFAULT_TAG, IMAGE_NAMES } from '../injector/images.js';

export const NAMESPACE = 'trellis-system';
export const NAME = 'trellisd';
export const MUTATING_WEBHOOK_CONFIGURATION = 'trellis-sidecar-injector';
export const VALIDATING_WEBHOOK_CONFIGURATION = 'trellis-validator';
export const MESH_CONFIGMAP = 'trellis-mesh-config';
export const MESH_CONFIG_KEY = 'mesh.yaml';
export const CA_SECRET = 'trellis-ca';
/** Namespace label that turns injection on. */
export const INJECT_NAMESPACE_LABEL = 'trellis.dev/inject';
/** Pod label that opts a pod in from a namespace without the namespace label (a label: webhooks cannot select annotations). */
export const INJECT_POD_LABEL = 'trellis.dev/inject';
export const CRD_KINDS: readonly CrdKind[] = [
  'VirtualService',
  'DestinationRule',
  'PeerAuthentication',
  'AuthorizationPolicy',
  'ServiceEntry',
  'Sidecar',
];

export const PORTS = { grpcTls: 15012, webhook: 15017, monitoring: 15014 } as const;
/** UID/GID the control plane runs as (the distroless "nonroot" user). */
export const CONTROL_PLANE_UID = 65532;

/** A Kubernetes object as plain JSON. */
export interface ManifestObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: { readonly name: string; readonly namespace?: string; readonly [key: string]: unknown };
  readonly [key: string]: unknown;
}

export interface InstallOptions {
  /** Registry prefix of the control-plane image; default DEFAULT_REGISTRY ('' for none). */
  readonly registry?: string;
  /** Image tag; default DEFAULT_TAG (the package version). */
  readonly imageTag?: string;
  readonly imagePullPolicy?: string;
  /** Control-plane replicas; default 2. */
  readonly replicas?: number | string;
  /** The mesh config file's text (`--mesh-config`), stored verbatim in ConfigMap trellis-mesh-config; default `{}`. */
  readonly meshConfig?: string;
  /** Full image reference; wins over registry/imageTag (the Helm renderer passes a template expression). */
  readonly image?: string;
}

const PART_OF = { 'app.kubernetes.io/part-of': 'trellis' } as const;
const SELECTOR = { app: NAME } as const;
const LABELS = { app: NAME, 'app.kubernetes.io/name': NAME, ...PART_OF } as const;

/** `<registry>/trellis/control-plane:<tag>`. */
export function controlPlaneImage(options: InstallOptions = {}): string {
  if (options.image !== undefined) return options.image;
  const registry = (options.registry ?? DEFAULT_REGISTRY).replace(/\/+$/, '');
  return `${registry === '' ? '' : `${registry}/`}${IMAGE_NAMES.controlPlane}:${options.imageTag ?? DEFAULT_TAG}`;
}

function namespace(): ManifestObject {
  return { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NAMESPACE, labels: { ...PART_OF } } };
}

function serviceAccount(): ManifestObject {
  return { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: NAME, namespace: NAMESPACE, labels: LABELS } };
}

interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
}

/**
 * What the control plane does cluster-wide, one rule per reason (deploy/README.md explains each):
 * informers of the mesh kinds, status of the Trellis kinds, the trust-bundle ConfigMaps, TokenReview for the
 * CA, and the caBundle of its own two webhook configurations (by name).
 */
export function clusterRules(): PolicyRule[] {
  const byGroup = crdsByGroup();
  return [
    // nodes: their topology labels give endpoints their locality (locality load balancing).
    { apiGroups: [''], resources: ['namespaces', 'nodes', 'pods', 'services'], verbs: ['list', 'watch'] },
    { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: ['list', 'watch'] },
    // secrets: the TLS credentials DestinationRules name (tls.credentialName), served over SDS to the
    // proxies of the Secret's namespace only; the control plane keeps only their TLS keys.
    { apiGroups: [''], resources: ['secrets'], verbs: ['get', 'list', 'watch'] },
    // One rule per API group, so no group is granted a resource it does not serve.
    ...byGroup.map(([group, plurals]) => ({ apiGroups: [group], resources: plurals, verbs: ['list', 'watch'] })),
    ...byGroup.map(([group, plurals]) => ({
      apiGroups: [group],
      resources: plurals.map((p) => `${p}/status`),
      // get: after a 409 Conflict the status writer reads the status subresource again.
      verbs: ['get', 'patch'],
    })),
    { apiGroups: [''], resources: ['configmaps'], verbs: ['create', 'get', 'list', 'update', 'watch'] },
    { apiGroups: ['authentication.k8s.io'], resources: ['tokenreviews'], verbs: ['create'] },
    {
      apiGroups: ['admissionregistration.k8s.io'],
      resources: ['mutatingwebhookconfigurations'],
      resourceNames: [MUTATING_WEBHOOK_CONFIGURATION],
      verbs: ['get', 'list', 'patch', 'watch'],
    },
    {
      apiGroups: ['admissionregistration.k8s.io'],
      resources: ['validatingwebhookconfigurations'],
      resourceNames: [VALIDATING_WEBHOOK_CONFIGURATION],
      verbs: ['get', 'list', 'patch', 'watch'],
    },
  ];
}

/** In trellis-system only: the CA's Secret (create cannot be limited by name; get is). */
export function namespaceRules(): PolicyRule[] {
  return [
    { apiGroups: [''], resources: ['secrets'], verbs: ['create'] },
    { apiGroups: [''], resources: ['secrets'], resourceNames: [CA_SECRET], verbs: ['get'] },
  ];
}

function groupOf(kind: CrdKind): string {
  const crd = customResourceDefinition(kind) as { spec: { group: string } };
  return crd.spec.group;
}

/** The CRDs' plurals by API group, both sorted: `[[group, [plural, …]], …]`. */
function crdsByGroup(): [string, string[]][] {
  const byGroup = new Map<string, string[]>();
  for (const kind of CRD_KINDS) byGroup.set(groupOf(kind), [...(byGroup.get(groupOf(kind)) ?? []), pluralOf(kind)]);
  return [...byGroup.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([group, plurals]) => [group, plurals.sort()]);
}

function rbac(): ManifestObject[] {
  const subjects = [{ kind: 'ServiceAccount', name: NAME, namespace: NAMESPACE }];
  return [
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: { name: NAME, labels: LABELS },
      rules: clusterRules(),
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: NAME, labels: LABELS },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: NAME },
      subjects,
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'Role',
      metadata: { name: NAME, namespace: NAMESPACE, labels: LABELS },
      rules: namespaceRules(),
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: NAME, namespace: NAMESPACE, labels: LABELS },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: NAME },
      subjects,
    },
  ];
}

function meshConfigMap(options: InstallOptions): ManifestObject {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: MESH_CONFIGMAP, namespace: NAMESPACE, labels: LABELS },
    data: { [MESH_CONFIG_KEY]: options.meshConfig ?? '{}\n' },
  };
}

const MESH_CONFIG_DIR = '/etc/trellis/mesh';
/** --state-dir turns the CA on; in Kubernetes mode its root lives in Secret trellis-ca, the directory stays empty. */
const STATE_DIR = '/var/lib/trellis';

function deployment(options: InstallOptions): ManifestObject {
  // Timeouts of 5 s: on a busy node a 2 s probe timed out, the kubelet restarted a healthy control plane,
  // and with no endpoint left every pod creation failed on the webhook (failurePolicy Fail). The startup
  // probe gives a slow start up to 3 min before liveness applies (seen: >30 s at load 20 on 2 cores).
  const httpProbe = (path: string, periodSeconds: number, failureThreshold = 3): Record<string, unknown> => ({
    httpGet: { path, port: 'http-monitoring', scheme: 'HTTP' },
    periodSeconds,
    timeoutSeconds: 5,
    failureThreshold,
  });
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: NAME, namespace: NAMESPACE, labels: LABELS },
    spec: {
      replicas: options.replicas ?? 2,
      selector: { matchLabels: SELECTOR },
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } },
      template: {
        metadata: { labels: LABELS, annotations: { 'trellis.dev/inject': 'false' } },
        spec: {
          serviceAccountName: NAME,
          securityContext: {
            runAsNonRoot: true,
            runAsUser: CONTROL_PLANE_UID,
            runAsGroup: CONTROL_PLANE_UID,
            fsGroup: CONTROL_PLANE_UID,
            seccompProfile: { type: 'RuntimeDefault' },
          },
          topologySpreadConstraints: [
            {
              maxSkew: 1,
              topologyKey: 'kubernetes.io/hostname',
              whenUnsatisfiable: 'ScheduleAnyway',
              labelSelector: { matchLabels: SELECTOR },
            },
          ],
          containers: [
            {
              name: NAME,
              image: controlPlaneImage(options),
              imagePullPolicy: options.imagePullPolicy ?? 'IfNotPresent',
              args: [
                'control-plane',
                '--kube',
                '--host=0.0.0.0',
                `--state-dir=${STATE_DIR}`,
                `--mesh-config=${MESH_CONFIG_DIR}/${MESH_CONFIG_KEY}`,
              ],
              ports: [
                { name: 'grpc-tls', containerPort: PORTS.grpcTls, protocol: 'TCP' },
                { name: 'https-webhook', containerPort: PORTS.webhook, protocol: 'TCP' },
                { name: 'http-monitoring', containerPort: PORTS.monitoring, protocol: 'TCP' },
              ],
              startupProbe: httpProbe('/healthz', 2, 90),
              livenessProbe: httpProbe('/healthz', 10),
              readinessProbe: httpProbe('/readyz', 5),
              resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '1Gi' } },
              securityContext: {
                allowPrivilegeEscalation: false,
                readOnlyRootFilesystem: true,
                capabilities: { drop: ['ALL'] },
              },
              volumeMounts: [
                { name: 'mesh-config', mountPath: MESH_CONFIG_DIR, readOnly: true },
                { name: 'state', mountPath: STATE_DIR },
                { name: 'tmp', mountPath: '/tmp' },
              ],
            },
          ],
          volumes: [
            { name: 'mesh-config', configMap: { name: MESH_CONFIGMAP } },
            { name: 'state', emptyDir: {} },
            { name: 'tmp', emptyDir: {} },
          ],
        },
      },
    },
  };
}

function podDisruptionBudget(): ManifestObject {
  return {
    apiVersion: 'policy/v1',
    kind: 'PodDisruptionBudget',
    metadata: { name: NAME, namespace: NAMESPACE, labels: LABELS },
    spec: { minAvailable: 1, selector: { matchLabels: SELECTOR } },
  };
}

/** 15010 (plaintext xDS and CA, local mode only) is on no port of the Service. */
function service(): ManifestObject {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: NAME, namespace: NAMESPACE, labels: LABELS },
    spec: {
      type: 'ClusterIP',
      selector: SELECTOR,
      ports: [
        { name: 'grpc-tls', port: PORTS.grpcTls, targetPort: 'grpc-tls', protocol: 'TCP' },
        { name: 'https-webhook', port: PORTS.webhook, targetPort: 'https-webhook', protocol: 'TCP' },
        { name: 'http-monitoring', port: PORTS.monitoring, targetPort: 'http-monitoring', protocol: 'TCP' },
      ],
    },
  };
}

/**
 * Only the three served ports are reachable from other pods. The plaintext port (15010) is off in
 * Kubernetes mode anyway; should someone turn it on with --xds-port, it stays unreachable from outside.
 */
function networkPolicy(): ManifestObject {
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { name: NAME, namespace: NAMESPACE, labels: LABELS },
    spec: {
      podSelector: { matchLabels: SELECTOR },
      policyTypes: ['Ingress'],
      ingress: [
        {
          ports: [
            { port: PORTS.grpcTls, protocol: 'TCP' },
            { port: PORTS.webhook, protocol: 'TCP' },
            { port: PORTS.monitoring, protocol: 'TCP' },
          ],
        },
      ],
    },
  };
}

function clientConfig(path: string): Record<string, unknown> {
  return { service: { name: NAME, namespace: NAMESPACE, path, port: PORTS.webhook } };
}

/** The namespaces the injector never injects (injector/annotations.ts): their pods are not even sent. */
const EXCLUDED_NAMESPACES = {
  key: 'kubernetes.io/metadata.name',
  operator: 'NotIn',
  values: [...NEVER_INJECTED_NAMESPACES].sort(),
};

function mutatingWebhookConfiguration(): ManifestObject {
  const common = {
    clientConfig: clientConfig('/inject'),
    rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'], scope: 'Namespaced' }],
    admissionReviewVersions: ['v1'],
    sideEffects: 'None',
    failurePolicy: 'Fail',
    matchPolicy: 'Equivalent',
    reinvocationPolicy: 'Never',
    timeoutSeconds: 10,
  };
  return {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'MutatingWebhookConfiguration',
    metadata: { name: MUTATING_WEBHOOK_CONFIGURATION, labels: LABELS },
    webhooks: [
      {
        // Every pod of a namespace labelled trellis.dev/inject=enabled (the handler honours the opt-out annotation).
        name: 'namespace.sidecar-injector.trellis.dev',
        ...common,
        namespaceSelector: {
          matchExpressions: [{ key: INJECT_NAMESPACE_LABEL, operator: 'In', values: ['enabled'] }, EXCLUDED_NAMESPACES],
        },
        // A pod labelled trellis.dev/inject=false is not even sent.
        objectSelector: { matchExpressions: [{ key: INJECT_POD_LABEL, operator: 'NotIn', values: ['false'] }] },
      },
      {
        // Pods labelled trellis.dev/inject=true in the other namespaces.
        name: 'object.sidecar-injector.trellis.dev',
        ...common,
        namespaceSelector: {
          matchExpressions: [
            { key: INJECT_NAMESPACE_LABEL, operator: 'NotIn', values: ['enabled'] },
            EXCLUDED_NAMESPACES,
          ],
        },
        objectSelector: { matchLabels: { [INJECT_POD_LABEL]: 'true' } },
      },
    ],
  };
}

function validatingWebhookConfiguration(): ManifestObject {
  return {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'ValidatingWebhookConfiguration',
    metadata: { name: VALIDATING_WEBHOOK_CONFIGURATION, labels: LABELS },
    webhooks: [
      {
        name: 'validation.trellis.dev',
        clientConfig: clientConfig('/validate'),
        rules: crdsByGroup().map(([group, resources]) => ({
          operations: ['CREATE', 'UPDATE'],
          apiGroups: [group],
          apiVersions: ['v1alpha1'],
          resources,
          scope: 'Namespaced',
        })),
        admissionReviewVersions: ['v1'],
        sideEffects: 'None',
        failurePolicy: 'Fail',
        matchPolicy: 'Equivalent',
        timeoutSeconds: 10,
        namespaceSelector: {},
        objectSelector: {},
      },
    ],
  };
}

/** The CustomResourceDefinitions, as crds/*.yaml hold them. */
export function crdObjects(): ManifestObject[] {
  return CRD_KINDS.map((kind) => customResourceDefinition(kind) as unknown as ManifestObject);
}

/** Every object the chart renders from templates (all but the Namespace and the CRDs), in install order. */
export function templatedObjects(options: InstallOptions = {}): ManifestObject[] {
  return [
    serviceAccount(),
    ...rbac(),
    meshConfigMap(options),
    deployment(options),
    podDisruptionBudget(),
    service(),
    networkPolicy(),
    mutatingWebhookConfiguration(),
    validatingWebhookConfiguration(),
  ];
}

/** deploy/install.yaml: the Namespace, the CRDs, then the rest, in the order kubectl applies them. */
export function installObjects(options: InstallOptions = {}): ManifestObject[] {
  return [namespace(), ...crdObjects(), ...templatedObjects(options)];
}
