// The agent's client of trellis.ca.v1.CertificateService (control-plane/ca/ca.proto): sends a CSR and gets
// back the certificate chain. How the caller proves who it is (design.md §5.1):
//   - a ServiceAccount token (`authorization: Bearer <token>`), read from `tokenFile` on every call because
//     the kubelet rotates projected tokens;
//   - over TLS, when the caller still holds an unexpired certificate, that certificate (mutual TLS, no
//     token); if the CA refuses it (UNAUTHENTICATED / PERMISSION_DENIED) the same call is retried once
//     with the token.
// The control plane's serving certificate is an SVID: it is verified against the configured trust bundle
// and by its URI SAN (`controlPlaneId`), never by host name.
import fs from 'node:fs/promises';
import * as grpc from '@grpc/grpc-js';
import { CONTROL_PLANE_NAMESPACE, CONTROL_PLANE_SERVER_NAME, CONTROL_PLANE_SERVICE_ACCOUNT } from '../api/names.js';
import {
  certificateServiceDefinition,
  type CreateCertificateRequest,
  type CreateCertificateResponse,
} from '../api/services.js';
import { checkServerSpiffeId, MemoryCertificateProvider, type TlsMaterial } from '../certs/certificate-provider.js';
import { DEFAULT_TRUST_DOMAIN, spiffeId } from '../certs/spiffe.js';
import { silentLogger, type Logger } from '../control-plane/logger.js';
import { tracer } from '../lib/tracing.js';

/** Local mode (port 15010): no transport security; only the token proves anything. */
export interface PlaintextTransport {
  readonly kind: 'plaintext';
}

/** Port 15012: the server's SVID must chain to `trustBundlePem` and carry `controlPlaneId` as a URI SAN. */
export interface TlsTransport {
  readonly kind: 'tls';
  /** PEM roots the control plane's serving certificate chains to. */
  readonly trustBundlePem: string;
  /** Default `spiffe://<trustDomain>/ns/trellis-system/sa/trellisd`. */
  readonly controlPlaneId?: string;
  /**
   * The TLS server name (SNI) sent; default `trellisd.trellis-system.svc`. Only SNI: the server is
   * verified by `controlPlaneId` whatever address is dialled (an IP address is not a valid SNI).
   */
  readonly serverName?: string;
}

export type CaTransport = PlaintextTransport | TlsTransport;

export interface CaClientOptions {
  /** A grpc-js target: `host:port` or `unix:///path`. */
  readonly address: string;
  readonly transport: CaTransport;
  /** A ServiceAccount token file, re-read on every call. Without it, calls carry no token. */
  readonly tokenFile?: string;
  /** Used for the default `controlPlaneId`; `cluster.local` by default. */
  readonly trustDomain?: string;
  /** Deadline of each call; default 10 s. */
  readonly deadlineMs?: number;
  readonly logger?: Logger;
}

/** The certificate the caller holds now: presented over mutual TLS while it is unexpired. */
export interface CurrentCertificate extends TlsMaterial {
  readonly notAfter: Date;
}

export interface CertificateRequest {
  /** PEM PKCS#10 request. */
  readonly csr: string;
  /** Requested lifetime; 0 or absent means the CA's default (24 h). */
  readonly validitySeconds?: number;
  /** When set (TLS transport only), authenticate with this certificate before falling back to the token. */
  readonly current?: CurrentCertificate;
}

/** How a call authenticated. */
export type CaAuthMethod = 'token' | 'certificate';

export interface IssuedChain {
  /** PEM certificates: the leaf first, then intermediates, the root last. */
  readonly chain: readonly string[];
  readonly via: CaAuthMethod;
}

/** What the certificate manager needs from a CA; CaClient is the real one. */
export interface CertificateIssuer {
  createCertificate(request: CertificateRequest): Promise<IssuedChain>;
}

/**
 * A failed call. `code` is the gRPC status (from the server, or the client's own: DEADLINE_EXCEEDED,
 * UNAVAILABLE, …); a token file that cannot be read is FAILED_PRECONDITION.
 */
export class CaClientError extends Error {
  override readonly name = 'CaClientError';
  constructor(
    readonly code: grpc.status,
    readonly details: string,
    readonly via: CaAuthMethod,
    options?: { cause?: unknown },
  ) {
    super(`CA ${grpc.status[code] ?? code} (${via}): ${details}`, options);
  }

  /** The CA said no to the credentials (as opposed to being unreachable or failing). */
  get refused(): boolean {
    return this.code === grpc.status.UNAUTHENTICATED || this.code === grpc.status.PERMISSION_DENIED;
  }
}

/** `spiffe://<trustDomain>/ns/trellis-system/sa/trellisd`: the identity of the control plane's serving certificate. */
export function defaultControlPlaneId(trustDomain = DEFAULT_TRUST_DOMAIN): string {
  return spiffeId({ trustDomain, namespace: CONTROL_PLANE_NAMESPACE, serviceAccount: CONTROL_PLANE_SERVICE_ACCOUNT });
}

const DEFAULT_DEADLINE_MS = 10_000;
export const DEFAULT_CONTROL_PLANE_SERVER_NAME = CONTROL_PLANE_SERVER_NAME;

export class CaClient implements CertificateIssuer {
  private readonly logger: Logger;
  private readonly controlPlaneId: string | undefined;
  private readonly channelOptions: grpc.ChannelOptions;
  /** The channel that authenticates by token (plaintext, or TLS verifying the server only). */
  private readonly tokenClient: grpc.Client;
  /** The mutual TLS channel of one certificate (by its chain), replaced when the certificate changes. */
  private certClient: { readonly chainPem: string; readonly client: grpc.Client } | undefined;
  private closed = false;

  constructor(private readonly options: CaClientOptions) {
    this.logger = (options.logger ?? silentLogger).child({ component: 'ca-client' });
    const transport = options.transport;
    this.channelOptions =
      transport.kind === 'tls'
        ? { 'grpc.ssl_target_name_override': transport.serverName ?? DEFAULT_CONTROL_PLANE_SERVER_NAME }
        : {};
    if (transport.kind === 'tls') {
      if (transport.trustBundlePem.trim() === '') throw new Error('CA client: the TLS trust bundle is empty');
      this.controlPlaneId = transport.controlPlaneId ?? defaultControlPlaneId(options.trustDomain);
      this.tokenClient = new grpc.Client(
        options.address,
        grpc.credentials.createSsl(Buffer.from(transport.trustBundlePem), null, null, {
          checkServerIdentity: checkServerSpiffeId(this.controlPlaneId),
        }),
        this.channelOptions,
      );
    } else {
      this.tokenClient = new grpc.Client(options.address, grpc.credentials.createInsecure());
    }
  }

  /**
   * Asks for a certificate. Over TLS with an unexpired `current` certificate, that certificate
   * authenticates the call; when the CA refuses it, the call is retried with the token. Rejects with
   * CaClientError.
   */
  async createCertificate(request: CertificateRequest): Promise<IssuedChain> {
    if (this.closed) throw new CaClientError(grpc.status.CANCELLED, 'the CA client is closed', 'token');
    const current = request.current;
    if (this.options.transport.kind === 'tls' && current && current.notAfter.getTime() > Date.now()) {
      try {
        const chain = await this.call(this.clientFor(current), request, new grpc.Metadata(), 'certificate');
        return { chain, via: 'certificate' };
      } catch (err) {
        if (!(err instanceof CaClientError && err.refused)) throw err;
        this.logger.warn(
          { code: grpc.status[err.code], details: err.details },
          'ca-client: the CA refused the current certificate; retrying with the token',
        );
      }
    }
    const metadata = new grpc.Metadata();
    const token = await this.readToken();
    if (token !== undefined) metadata.set('authorization', `Bearer ${token}`);
    const chain = await this.call(this.tokenClient, request, metadata, 'token');
    return { chain, via: 'token' };
  }

  close(): void {
    this.closed = true;
    this.tokenClient.close();
    this.certClient?.client.close();
    this.certClient = undefined;
  }

  private clientFor(current: CurrentCertificate): grpc.Client {
    if (this.certClient?.chainPem === current.certChainPem) return this.certClient.client;
    this.certClient?.client.close();
    const transport = this.options.transport as TlsTransport;
    // The provider's bundle verifies the server, so it is the transport's, not the workload's.
    const provider = new MemoryCertificateProvider({
      certChainPem: current.certChainPem,
      privateKeyPem: current.privateKeyPem,
      trustBundlePem: transport.trustBundlePem,
    });
    const client = new grpc.Client(
      this.options.address,
      provider.channelCredentials(this.controlPlaneId!),
      this.channelOptions,
    );
    this.certClient = { chainPem: current.certChainPem, client };
    return client;
  }

  private async readToken(): Promise<string | undefined> {
    const file = this.options.tokenFile;
    if (file === undefined) return undefined;
    let text: string;
    try {
      text = await fs.readFile(file, 'utf8');
    } catch (err) {
      throw new CaClientError(
        grpc.status.FAILED_PRECONDITION,
        `cannot read the token file ${file}: ${(err as Error).message}`,
        'token',
        { cause: err },
      );
    }
    const token = text.trim();
    if (token === '')
      throw new CaClientError(grpc.status.FAILED_PRECONDITION, `the token file ${file} is empty`, 'token');
    return token;
  }

  private call(
    client: grpc.Client,
    request: CertificateRequest,
    metadata: grpc.Metadata,
    via: CaAuthMethod,
  ): Promise<string[]> {
    const def = certificateServiceDefinition.CreateCertificate;
    const message: CreateCertificateRequest = {
      csr: request.csr,
      validitySeconds: BigInt(Math.max(0, Math.floor(request.validitySeconds ?? 0))),
    };
    const deadline = Date.now() + (this.options.deadlineMs ?? DEFAULT_DEADLINE_MS);
    // Tracing on (lib/tracing.ts): span `agent.certificate_request`, its context sent in the metadata so
    // the CA's `ca.sign` span is its child.
    const span = tracer().enabled
      ? tracer().startSpan('agent.certificate_request', {
          kind: 'client',
          attributes: {
            'trellis.ca.via': via,
            'server.address': this.options.address,
            'trellis.ca.validity_seconds': Number(message.validitySeconds),
          },
        })
      : undefined;
    if (span) for (const [key, value] of Object.entries(span.headers())) metadata.set(key, value);
    return new Promise<string[]>((resolve, reject) => {
      client.makeUnaryRequest(
        def.path,
        def.requestSerialize,
        def.responseDeserialize,
        message,
        metadata,
        { deadline },
        (err: grpc.ServiceError | null, response?: CreateCertificateResponse) => {
          if (span) {
            if (err) span.fail(`${grpc.status[err.code]}: ${err.details || err.message}`);
            span.setAttributes({
              'rpc.grpc.status_code': err ? err.code : 0,
              'trellis.ca.chain': response?.certChain.length,
            });
            span.end();
          }
          if (err) {
            reject(new CaClientError(err.code, err.details || err.message, via, { cause: err }));
          } else if (!response || response.certChain.length === 0) {
            reject(new CaClientError(grpc.status.INTERNAL, 'the CA returned an empty certificate chain', via));
          } else {
            resolve(response.certChain);
          }
        },
      );
    });
  }
}
