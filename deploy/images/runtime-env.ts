// The environment the control plane runs with in its image (deploy/images/build.ts, control-plane.Dockerfile)
// and in the benchmarks that measure it (bench/server-process.ts, bench/cli-startup.ts).
//
// MALLOC_MMAP_THRESHOLD_: glibc serves every allocation of 128 KiB or more with its own mmap and returns it
// to the kernel when freed. Without it glibc raises the threshold after the first large frees (up to 32 MiB),
// so the multi-megabyte response buffers the xDS server writes to every stream (a RouteConfiguration of a
// 1,000-Service mesh, copied per stream by gRPC framing) come from the heap arenas and stay resident after
// they are freed. Measured with `npm run bench -- xds-mesh --services 1000 --sidecars 300 --proxyless 0`:
// RSS per proxy after the connect storm 3,610 KiB without it, 886 KiB with it (JS heap 181 MiB in both).
// The value is read by glibc when the process starts, so it is set in the environment, not by the process.
export const CONTROL_PLANE_MALLOC_ENV: Readonly<Record<string, string>> = { MALLOC_MMAP_THRESHOLD_: '131072' };
