// Durations of the CRDs live in lib/duration.ts (a leaf the agent's flags use too); re-exported here for crds/.
export * from '../lib/duration.js';
