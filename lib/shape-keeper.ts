// One live instance of each short-lived class on a hot path, so that a full garbage collection does not
// throw away the optimized code of that path.
//
// V8 (Node 20, V8 11.3) gives the instances of a class a hidden class (a "map") reached from the class's
// initial map by property-adding transitions, which it holds weakly. When full GCs find no live instance,
// the map dies, and every optimized function specialized to it is deoptimized ("weak objects" in
// `--log-deopt`). Object literals are not affected (their maps are held by the literal's boilerplate).
// A control plane between changes has no response, request or hash in flight, and full GCs come then too
// (when the heap has grown, and from V8's memory reducer in a quiet process): so the next change or the next proxy to connect ran the
// response path in the interpreter until V8 had optimized it again. In the xds-mesh benchmark the full GC
// after the connect storm deoptimized 69–71 functions and a later one 89–96 (the response writers,
// protobuf-es's writer and reader, the decoded requests, node:crypto's Hash); with the samples below, 9
// (Node's own stream and HTTP/2 internals, out of reach, and the generator's part builder). The first new
// Pod after the changes got its config in 20–27 ms instead of 31–32 (docs/xds-server.md).
//
// A module whose hot path makes such objects registers one sample of each, built the way the hot path
// builds them (so it has the same map). The samples are small and never used.
// test/lib/shape-keeper.test.ts shows the effect on the response writers, the SotW request decoder and Hash.
const samples: object[] = [];

/** Keeps `instances` alive for the life of the process (see above). */
export function keepShapes(...instances: object[]): void {
  samples.push(...instances);
}
