// A raw ADS client for protocol tests: real gRPC (grpc-js) and the real protos, no xDS library in between,
// so a test controls every field of every request and sees every response.
import { create, fromBinary, toBinary, type MessageInitShape } from '@bufbuild/protobuf';
import * as grpc from '@grpc/grpc-js';
import {
  DeltaDiscoveryRequestSchema,
  DeltaDiscoveryResponseSchema,
  DiscoveryRequestSchema,
  DiscoveryResponseSchema,
  type DeltaDiscoveryResponse,
  type DiscoveryResponse,
} from '../../control-plane/envoy/gen/envoy/service/discovery/v3/discovery_pb.js';
import type { ClusterLoadAssignment } from '../../control-plane/envoy/gen/envoy/config/endpoint/v3/endpoint_pb.js';
import { resourceName, unpackAny, type Message } from '../../control-plane/envoy/protos.js';

const SERVICE = '/envoy.service.discovery.v3.AggregatedDiscoveryService';

export type SotwRequestInit = MessageInitShape<typeof DiscoveryRequestSchema>;
export type DeltaRequestInit = MessageInitShape<typeof DeltaDiscoveryRequestSchema>;

/** Messages and the end of a stream, awaited in order with a deadline. */
class Inbox<T> {
  private readonly items: T[] = [];
  private readonly waiters: ((item: T | Error) => void)[] = [];
  private ended: Error | undefined;

  push(item: T): void {
    const waiter = this.waiters.shift();
    if (waiter) waiter(item);
    else this.items.push(item);
  }

  end(reason: Error): void {
    this.ended = reason;
    for (const waiter of this.waiters.splice(0)) waiter(reason);
  }

  get pending(): number {
    return this.items.length;
  }

  next(timeoutMs = 5_000): Promise<T> {
    const item = this.items.shift();
    if (item !== undefined) return Promise.resolve(item);
    if (this.ended) return Promise.reject(this.ended);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(done), 1);
        reject(new Error(`no message within ${timeoutMs} ms`));
      }, timeoutMs);
      const done = (value: T | Error): void => {
        clearTimeout(timer);
        if (value instanceof Error) reject(value);
        else resolve(value);
      };
      this.waiters.push(done);
    });
  }
}

export interface StreamEnd {
  readonly code: grpc.status;
  readonly details: string;
}

abstract class RawStream<Req, Res> {
  readonly inbox = new Inbox<Res>();
  /** Resolves with the stream's final status. */
  readonly ended: Promise<StreamEnd>;
  protected readonly call: grpc.ClientDuplexStream<Req, Res>;

  constructor(client: grpc.Client, method: string, serialize: (r: Req) => Buffer, deserialize: (b: Buffer) => Res) {
    this.call = client.makeBidiStreamRequest(`${SERVICE}/${method}`, serialize, deserialize);
    this.call.on('data', (res: Res) => this.inbox.push(res));
    this.ended = new Promise((resolve) => {
      this.call.on('status', (s: grpc.StatusObject) => {
        this.inbox.end(new Error(`stream ended: ${grpc.status[s.code]} ${s.details}`));
        resolve({ code: s.code, details: s.details });
      });
    });
    this.call.on('error', () => undefined); // the status event carries it
  }

  next(timeoutMs?: number): Promise<Res> {
    return this.inbox.next(timeoutMs);
  }

  close(): void {
    this.call.cancel();
  }

  /** Ends the client's side of the stream (half-close); the server still owes a status. */
  halfClose(): void {
    this.call.end();
  }
}

export class SotwStream extends RawStream<SotwRequestInit, DiscoveryResponse> {
  send(request: SotwRequestInit): void {
    this.call.write(request);
  }
}

export class DeltaStream extends RawStream<DeltaRequestInit, DeltaDiscoveryResponse> {
  send(request: DeltaRequestInit): void {
    this.call.write(request);
  }
}

export class RawAdsClient {
  readonly client: grpc.Client;

  /** Plaintext unless `credentials` says otherwise (the TLS port: see test/ca/ca-helpers.ts tlsCredentials). */
  constructor(
    target: string,
    credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure(),
    options: grpc.ChannelOptions = {},
  ) {
    this.client = new grpc.Client(target, credentials, options);
  }

  sotw(): SotwStream {
    return new SotwStream(
      this.client,
      'StreamAggregatedResources',
      (r) => Buffer.from(toBinary(DiscoveryRequestSchema, create(DiscoveryRequestSchema, r))),
      (b) => fromBinary(DiscoveryResponseSchema, b),
    );
  }

  delta(): DeltaStream {
    return new DeltaStream(
      this.client,
      'DeltaAggregatedResources',
      (r) => Buffer.from(toBinary(DeltaDiscoveryRequestSchema, create(DeltaDiscoveryRequestSchema, r))),
      (b) => fromBinary(DeltaDiscoveryResponseSchema, b),
    );
  }

  close(): void {
    this.client.close();
  }
}

/** The resources of a SotW response, unpacked, by name. */
export function resourcesOf(response: DiscoveryResponse): Map<string, Message> {
  const out = new Map<string, Message>();
  for (const any of response.resources) {
    const message = unpackAny(any);
    out.set(resourceName(message) ?? '', message);
  }
  return out;
}

/** Names of a SotW response's resources in order. */
export function namesOf(response: DiscoveryResponse): string[] {
  return [...resourcesOf(response).keys()];
}

/** Names of a delta response's resources in order. */
export function deltaNamesOf(response: DeltaDiscoveryResponse): string[] {
  return response.resources.map((r) => r.name);
}

/** A node as an injected sidecar would send it (design.md §3). */
export function testNode(id: string, metadata: Record<string, string> = {}): SotwRequestInit['node'] {
  return {
    id,
    cluster: 'test',
    metadata: { NAMESPACE: 'default', PROXY_TYPE: 'envoy', ...metadata },
    locality: { region: 'r1', zone: 'z1' },
  };
}

/** Name → version of a delta response's resources. */
export function deltaVersionsOf(response: DeltaDiscoveryResponse): Record<string, string> {
  return Object.fromEntries(response.resources.map((r) => [r.name, r.version]));
}

/** The resources of a delta response, unpacked, by name. */
export function deltaResourcesOf(response: DeltaDiscoveryResponse): Map<string, Message> {
  const out = new Map<string, Message>();
  for (const r of response.resources) if (r.resource) out.set(r.name, unpackAny(r.resource));
  return out;
}

/** The socket ports of a ClusterLoadAssignment's endpoints, in order. */
export function endpointPortsOf(message: Message): number[] {
  if (message.$typeName !== 'envoy.config.endpoint.v3.ClusterLoadAssignment')
    throw new Error(`${message.$typeName} is not an assignment`);
  const ports: number[] = [];
  for (const locality of (message as ClusterLoadAssignment).endpoints) {
    for (const lb of locality.lbEndpoints) {
      if (lb.hostIdentifier.case !== 'endpoint') continue;
      const address = lb.hostIdentifier.value.address?.address;
      if (address?.case === 'socketAddress' && address.value.portSpecifier.case === 'portValue')
        ports.push(address.value.portSpecifier.value);
    }
  }
  return ports;
}
