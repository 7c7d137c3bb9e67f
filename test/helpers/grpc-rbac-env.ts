// grpc-js-xds 1.14.1 enforces the RBAC HTTP filter only with GRPC_XDS_EXPERIMENTAL_RBAC=true, read once when
// the package loads (src/environment.ts), and NACKs a server Listener that carries the filter otherwise.
// Imported first by the tests whose XdsServers run in the test worker, so it is set before the package loads.
process.env.GRPC_XDS_EXPERIMENTAL_RBAC = 'true';
