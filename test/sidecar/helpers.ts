// Shared by the sidecar tests: an in-process CA (certs/, no network) to make workload certificates the way
// the control plane does, the callers of a real control plane with the CA service in local mode
// (test/helpers/ca-control-plane.ts), golden files, and SDS streams with their secrets.
import type { ExecutionContext } from 'ava';
import * as grpc from '@grpc/grpc-js';
import { create, type DescMessage, type MessageInitShape, type MessageShape } from '@bufbuild/protobuf';
import { anyUnpack } from '@bufbuild/protobuf/wkt';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import {
  CertificateAuthority,
  createCsr,
  generateWorkloadKey,
  spiffeId,
  type WorkloadIdentity,
  type WorkloadKey,
} from '../../certs/index.js';
import type { Secret } from '../../control-plane/envoy/gen/envoy/extensions/transport_sockets/tls/v3/secret_pb.js';
import {
  DeltaDiscoveryRequestSchema,
  DiscoveryRequestSchema,
  type DeltaDiscoveryResponse,
  type DiscoveryResponse,
} from '../../control-plane/envoy/gen/envoy/service/discovery/v3/discovery_pb.js';
import { registry } from '../../control-plane/envoy/protos.js';
import { assemble, type WorkloadCertificate } from '../../sidecar/certificate-manager.js';
import { SdsServer, sdsServiceDefinition, type SdsServerOptions } from '../../sidecar/sds-server.js';
import { captureLogs, makeTempDir, type CaToken } from '../helpers/ca-control-plane.js';
import { within } from '../helpers/wait.js';

export const SHOP_CART: WorkloadIdentity = { trustDomain: 'cluster.local', namespace: 'shop', serviceAccount: 'cart' };
export const TOKEN_CART = 'token-for-shop-cart-0123456789';
export const TOKEN_TELLER = 'token-for-bank-teller-0123456789';

/** A CA of its own (certs/ only, no control plane). */
import { foreignAuthority } from '../ca/ca-helpers.js';
export { foreignAuthority as localCa };

/** A workload certificate issued by `ca` for `identity`, assembled as the certificate manager does. */
export async function issue(
  ca: CertificateAuthority,
  identity: WorkloadIdentity = SHOP_CART,
  ttlSeconds = 3600,
  workloadKey?: WorkloadKey,
): Promise<WorkloadCertificate> {
  const id = spiffeId(identity);
  const key = workloadKey ?? (await generateWorkloadKey());
  const issued = await ca.sign({ csr: await createCsr(key, id), identity, ttlSeconds });
  return assemble(issued.chain, key.privateKeyPem, id, undefined, new Date());
}

/** The callers the sidecar tests' control plane knows: shop/cart and bank/teller. */
export const CA_TOKENS: readonly CaToken[] = [
  { token: TOKEN_CART, namespace: 'shop', serviceAccount: 'cart' },
  { token: TOKEN_TELLER, namespace: 'bank', serviceAccount: 'teller' },
];

/** `actual` equals the JSON in `golden`, compared as JSON (prettier may reformat the file); UPDATE_GOLDEN=1 rewrites it. */
export function assertGolden(t: ExecutionContext, actual: unknown, golden: string): void {
  if (process.env.UPDATE_GOLDEN === '1') {
    fs.mkdirSync(path.dirname(golden), { recursive: true });
    fs.writeFileSync(golden, `${JSON.stringify(actual, null, 2)}\n`);
  }
  t.deepEqual(
    actual,
    JSON.parse(fs.readFileSync(golden, 'utf8')),
    'differs from the golden (UPDATE_GOLDEN=1 rewrites it)',
  );
}

/** A port nobody listens on right now (127.0.0.1). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}

/** A bidi stream with a queue of responses. */
export class TestStream<Req extends DescMessage, Res> {
  private readonly queue: Res[] = [];
  private readonly waiters: ((r: Res) => void)[] = [];
  private readonly call: grpc.ClientDuplexStream<MessageShape<Req>, Res>;

  constructor(
    client: grpc.Client,
    method: grpc.MethodDefinition<MessageShape<Req>, Res>,
    private readonly schema: Req,
  ) {
    this.call = client.makeBidiStreamRequest(method.path, method.requestSerialize, method.responseDeserialize);
    this.call.on('data', (r: Res) => {
      const w = this.waiters.shift();
      if (w) w(r);
      else this.queue.push(r);
    });
    this.call.on('error', () => undefined);
  }

  send(init: MessageInitShape<Req>): void {
    this.call.write(create(this.schema, init));
  }

  next(what = 'a response', timeoutMs = 3_000): Promise<Res> {
    const queued = this.queue.shift();
    if (queued) return Promise.resolve(queued);
    return within(what, new Promise<Res>((resolve) => this.waiters.push(resolve)), timeoutMs);
  }

  pending(): number {
    return this.queue.length;
  }

  close(): void {
    this.call.end();
    this.call.cancel();
  }
}

/** A SotW SDS stream (StreamSecrets) on `client`. */
export function sdsSotw(client: grpc.Client) {
  return new TestStream(client, sdsServiceDefinition.StreamSecrets, DiscoveryRequestSchema);
}

/** A delta SDS stream (DeltaSecrets) on `client`. */
export function sdsDelta(client: grpc.Client) {
  return new TestStream(client, sdsServiceDefinition.DeltaSecrets, DeltaDiscoveryRequestSchema);
}

/** The secrets of an SDS response (SotW or delta), by name. */
export function secrets(response: DiscoveryResponse | DeltaDiscoveryResponse): Map<string, Secret> {
  const anys =
    'versionInfo' in response ? response.resources : response.resources.map((r) => r.resource!).filter(Boolean);
  return new Map(
    anys.map((a) => {
      const s = anyUnpack(a, registry) as Secret;
      return [s.name, s];
    }),
  );
}

/** The inline bytes or string of a data source. */
export function inline(source: { specifier: { case?: string; value?: unknown } } | undefined): string {
  const v = source?.specifier.value;
  return v instanceof Uint8Array ? Buffer.from(v).toString() : String(v);
}

/** An agent SDS server on a Unix socket in a temporary directory, three certificates of one CA, a client. */
export interface SdsFixture {
  readonly dir: string;
  readonly socket: string;
  readonly server: SdsServer;
  readonly certs: WorkloadCertificate[];
  readonly client: grpc.Client;
  /** Every log record, at debug level. */
  readonly lines: Record<string, unknown>[];
}

export async function startSds(
  prefix: string,
  options: Omit<SdsServerOptions, 'socketPath' | 'logger'> = {},
): Promise<SdsFixture> {
  const dir = makeTempDir(prefix);
  const socket = path.join(dir, 'sds.sock');
  const { logger, lines } = captureLogs('debug');
  const ca = await foreignAuthority();
  const certs = [await issue(ca), await issue(ca), await issue(ca)];
  const server = new SdsServer({ ...options, socketPath: socket, logger });
  await server.listen();
  const client = new grpc.Client(`unix://${socket}`, grpc.credentials.createInsecure());
  return { dir, socket, server, certs, client, lines };
}

/** Closes what startSds started and removes its directory. */
export async function stopSds(fixture: Partial<SdsFixture> | undefined): Promise<void> {
  fixture?.client?.close();
  await fixture?.server?.close();
  if (fixture?.dir) fs.rmSync(fixture.dir, { recursive: true, force: true });
}
