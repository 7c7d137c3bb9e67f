// The generated references: where each is written and how it is rendered (scripts/references.ts writes or
// checks them; test/docs/references.test.ts fails when one is stale).
export const CRD_REFERENCE = 'docs/reference/crds.md';
export const CLI_REFERENCE = 'docs/reference/cli.md';
export const PORTS_METRICS_LABELS_REFERENCE = 'docs/reference/ports-metrics-labels.md';

export interface Reference {
  readonly file: string;
  render(): Promise<string>;
}

/** The generated references, each imported when rendered (the CLI one builds the whole program). */
export const REFERENCES: Readonly<Record<string, Reference>> = {
  crds: {
    file: CRD_REFERENCE,
    render: async () => (await import('./crds.js')).renderCrdReference(),
  },
  cli: {
    file: CLI_REFERENCE,
    render: async () => (await import('./cli.js')).renderCliReference(),
  },
  ports: {
    file: PORTS_METRICS_LABELS_REFERENCE,
    render: async () => (await import('./ports-metrics-labels.js')).renderPortsMetricsLabels(),
  },
};
