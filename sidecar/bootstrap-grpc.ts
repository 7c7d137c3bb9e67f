// The xDS bootstrap of a proxyless gRPC application (grpc-js-xds reads it from GRPC_XDS_BOOTSTRAP;
// reference/grpc-js-xds.md §1): the agent's local xDS proxy as the one server, the node, the two
// certificate provider instances the served config names (cluster-tls.ts, listener-tls.ts), and the
// server listener name template of A36 servers (cluster-names.ts grpcServerListenerName).
//
// refresh_interval: grpc-js re-reads the three cert files every interval (and re-creates its TLS
// contexts), so it bounds how long after a renewal the application keeps using the old certificate.
// Default 5 s: far below half of any lifetime the CA grants in practice (renewal happens at 40–50 % of
// it, so the old certificate still has ≥ 50 % left), and three small reads per 5 s cost nothing.
import fs from 'node:fs/promises';
import path from 'node:path';
import { GRPC_SERVER_LISTENER_TEMPLATE } from '../api/cluster-names.js';
import { GRPC_IDENTITY_PROVIDER, GRPC_ROOT_PROVIDER } from '../api/names.js';
import { certFilePaths } from './cert-files.js';
import { bootstrapNode, type BootstrapNode, type ProxyNodeOptions } from './proxy-node.js';

export { GRPC_SERVER_LISTENER_TEMPLATE };
export const DEFAULT_REFRESH_INTERVAL = '5s';

export interface GrpcBootstrapOptions {
  /** The agent's xDS proxy: `unix:///path/to/xds.sock` or `127.0.0.1:<port>`. */
  readonly xdsServerUri: string;
  readonly node: ProxyNodeOptions;
  /** The directory cert-files.ts writes; the certificate providers are omitted when unset. */
  readonly certDir?: string;
  /** `^\d+(\.\d+)?s$`; default 5 s (see the top of this file). */
  readonly refreshInterval?: string;
}

interface FileWatcherConfig {
  certificate_file?: string;
  private_key_file?: string;
  ca_certificate_file: string;
  refresh_interval: string;
}

export interface GrpcBootstrap {
  xds_servers: { server_uri: string; channel_creds: { type: 'insecure' }[]; server_features: string[] }[];
  node: BootstrapNode;
  certificate_providers?: Record<string, { plugin_name: 'file_watcher'; config: FileWatcherConfig }>;
  server_listener_resource_name_template: string;
}

/** The bootstrap as a JSON-ready object (pure). */
export function grpcBootstrap(options: GrpcBootstrapOptions): GrpcBootstrap {
  const refresh = options.refreshInterval ?? DEFAULT_REFRESH_INTERVAL;
  if (!/^\d+(\.\d+)?s$/.test(refresh)) throw new Error(`refreshInterval "${refresh}" must look like "5s" or "0.5s"`);
  if (options.xdsServerUri === '') throw new Error('xdsServerUri must not be empty');
  const bootstrap: GrpcBootstrap = {
    xds_servers: [
      { server_uri: options.xdsServerUri, channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] },
    ],
    node: bootstrapNode(options.node, 'grpc'),
    certificate_providers: undefined,
    server_listener_resource_name_template: GRPC_SERVER_LISTENER_TEMPLATE,
  };
  if (options.certDir === undefined) {
    delete bootstrap.certificate_providers;
  } else {
    const files = certFilePaths(path.resolve(options.certDir));
    bootstrap.certificate_providers = {
      [GRPC_IDENTITY_PROVIDER]: {
        plugin_name: 'file_watcher',
        config: {
          certificate_file: files.certificateFile,
          private_key_file: files.privateKeyFile,
          ca_certificate_file: files.caCertificateFile,
          refresh_interval: refresh,
        },
      },
      [GRPC_ROOT_PROVIDER]: {
        plugin_name: 'file_watcher',
        config: { ca_certificate_file: files.caCertificateFile, refresh_interval: refresh },
      },
    };
  }
  return bootstrap;
}

/** Writes the bootstrap to `file` (atomically: a temporary file renamed over it), mode 0644. */
export async function writeGrpcBootstrap(file: string, options: GrpcBootstrapOptions): Promise<GrpcBootstrap> {
  const bootstrap = grpcBootstrap(options);
  await writeJsonAtomically(file, bootstrap);
  return bootstrap;
}

/** `JSON.stringify(value, null, 2)` to `file` via a temporary file and rename(2). */
export async function writeJsonAtomically(file: string, value: unknown): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  await fs.writeFile(tmp, `${JSON.stringify(value, null, 2)}\n`, { mode: 0o644 });
  await fs.rename(tmp, file);
}
