#!/usr/bin/env node
// The `trellis` executable. `trellis agent` runs in every pod, so it goes straight to the agent's own entry
// (sidecar/main.ts) without building the whole program; every other command goes through cli.ts.
if (process.argv[2] === 'agent') {
  await import('../sidecar/main.js');
} else {
  // `control-plane`: V8's young generation is kept small while the modules load, released once the ports
  // listen (startup-heap.ts, control-plane-command.ts).
  if (process.argv[2] === 'control-plane') (await import('./startup-heap.js')).holdYoungGeneration();
  const { buildProgram } = await import('./cli.js');
  await buildProgram().parseAsync(process.argv);
}
