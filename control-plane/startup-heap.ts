// Idle memory of the control plane (issue 14). While the modules load (the Envoy protos' descriptors, the
// validator, the translator) nearly every object V8 allocates survives, and V8 answers a high survival rate
// by growing the young generation, to its 16 MiB semi-spaces: about 25 MiB of RSS that stays committed,
// unused, for as long as the process idles. V8 grows the young generation by `--semi-space-growth-factor`
// (a flag it reads at each growth), so holding that factor at 1 while the program loads keeps the young
// generation at its initial 1 MiB; releasing it once the ports listen (releaseYoungGeneration) lets it
// grow again as soon as load calls for it, so throughput under load is as with V8's defaults.
// Not done when the operator set the flag on node's command line (NODE_OPTIONS may not carry it): theirs stands.
import v8 from 'node:v8';

const FLAG = '--semi-space-growth-factor';
/** V8's default growth factor (v8/src/flags/flag-definitions.h). */
const DEFAULT_GROWTH_FACTOR = 2;

let held = false;

function setByOperator(): boolean {
  return process.execArgv.some((arg) => arg.replace(/_/g, '-').startsWith(FLAG));
}

/** Keeps V8's young generation at its initial size until releaseYoungGeneration(). */
export function holdYoungGeneration(): void {
  if (held || setByOperator()) return;
  v8.setFlagsFromString(`${FLAG}=1`);
  held = true;
}

/** Lets V8's young generation grow again (its default growth factor). */
export function releaseYoungGeneration(): void {
  if (!held) return;
  v8.setFlagsFromString(`${FLAG}=${DEFAULT_GROWTH_FACTOR}`);
  held = false;
}
