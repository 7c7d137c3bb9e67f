// Imported first by programmed.test.ts, before @grpc/grpc-js-xds reads its environment: the test's
// clients are built without ring hash (GRPC_XDS_EXPERIMENTAL_ENABLE_RING_HASH=false, as gRPC releases
// before ring hash support were), so they NACK a Cluster with lb_policy RING_HASH — a config the control
// plane accepts and a client rejects.
process.env.GRPC_XDS_EXPERIMENTAL_ENABLE_RING_HASH = 'false';
