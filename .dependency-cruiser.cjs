// The layering of design.md §1–2, as rules `npm run lint` enforces (dependency-cruiser). Each rule says
// which folder may not import which, and why; `npm run graph` draws the folder graph into
// docs/architecture.md. Type-only imports count too: a boundary is about what a reader must know.
/** @type {import('dependency-cruiser').IConfiguration} */
const product = '^(api|lib|certs|crds|injector|sidecar|deploy|control-plane)/';

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'A cycle makes two modules one: neither can be read, tested or loaded without the other.',
      from: { path: product },
      to: { circular: true },
    },
    {
      name: 'product-not-examples-tests-bench',
      severity: 'error',
      comment: 'The product never imports the demo, the tests or the benchmarks (they import the product).',
      from: { path: product },
      to: { path: '^(examples|test|bench|tools|scripts)/' },
    },
    {
      name: 'leaves-stay-leaves',
      severity: 'error',
      comment:
        'api/ (shared definitions) and lib/ (clock, backoff) are leaves: everything may import them, they import only each other.',
      from: { path: '^(api|lib)/' },
      to: { path: product, pathNot: '^(api|lib|control-plane/envoy/gen)/' },
    },
    {
      name: 'xds-engine-knows-no-config-model',
      severity: 'error',
      comment:
        'The protocol engine (control-plane/xds/) serves whatever a Generator gives it: no model, translation, sources, Kubernetes, CA or CRD code (style-anchors.md); it reads the SPIFFE ID of a peer with certs/peer-identity.ts.',
      from: { path: '^control-plane/xds/' },
      to: {
        path: '^(control-plane/(model|translate|sources|kube|ca|webhook)|certs|crds|injector|sidecar)/',
        pathNot: '^certs/peer-identity\\.ts$',
      },
    },
    {
      name: 'xds-engine-loads-no-control-plane',
      severity: 'error',
      comment:
        'The engine serves the control plane’s ADS and the agent’s SDS (sidecar/sds-server.ts with a Secret generator): of control-plane/ it imports only the Envoy protos and the logger, so the agent that loads it loads nothing else of the control plane.',
      from: { path: '^control-plane/xds/' },
      to: { path: '^control-plane/', pathNot: '^control-plane/(xds/|envoy/|logger\\.ts$)' },
    },
    {
      name: 'crds-is-a-leaf-of-the-control-plane',
      severity: 'error',
      comment:
        'crds/ (CRD types, schema, validator) is shared by the webhook, the CLI and the translator: it imports nothing from control-plane/.',
      from: { path: '^crds/' },
      to: { path: '^(control-plane|sidecar|injector)/' },
    },
    {
      name: 'certs-is-a-library',
      severity: 'error',
      comment: 'certs/ is the CA library: no I/O policy, no control plane, no agent.',
      from: { path: '^certs/' },
      to: { path: '^(control-plane|sidecar|injector|crds)/' },
    },
    {
      name: 'agent-loads-only-what-it-runs',
      severity: 'error',
      comment:
        'The agent (sidecar/) runs in every pod: it imports the shared API definitions, lib/, certs/, logging, the Envoy protos and the xDS engine (its SDS is the engine with a Secret generator), never the CA service, model, translation, Kubernetes layer or CRDs.',
      from: { path: '^sidecar/' },
      to: {
        path: '^(control-plane|crds|injector)/',
        pathNot: '^control-plane/(logger\\.ts|envoy/|xds/)',
      },
    },
    {
      name: 'translation-is-pure',
      severity: 'error',
      comment:
        'Translation is data in, Envoy resources out: it reads the model, never a source, the Kubernetes layer, the CA service or the xDS server.',
      from: { path: '^control-plane/(model|translate)/' },
      to: { path: '^(control-plane/(sources|kube|ca|webhook|xds/(?!generator|node))|sidecar|injector)' },
    },
    {
      name: 'injector-is-pure',
      severity: 'error',
      comment:
        'The injector (templates, JSON Patch, capture rules) does not reach into the xDS server, the sources or the CA service.',
      from: { path: '^injector/' },
      to: { path: '^control-plane/(xds|sources|kube|ca)/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '(^|/)(node_modules|dist|control-plane/envoy/gen)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js', '.mjs', '.json'] },
    reporterOptions: {
      archi: { collapsePattern: '^(control-plane/[^/]+|[^/]+)/' },
    },
  },
};
