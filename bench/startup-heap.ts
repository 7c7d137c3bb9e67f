// Imported first by the benchmarks' control-plane processes (bench/server.ts, bench/xds-mesh-server.ts):
// V8's young generation held at its initial size while the modules load, as `trellis control-plane` does
// (control-plane/startup-heap.ts); they release it once listening. ES modules evaluate their imports in
// order, so this runs before the others load.
import { holdYoungGeneration } from '../control-plane/startup-heap.js';

holdYoungGeneration();
