// Who is calling the CA: `authorization: Bearer <token>` proves a namespace and a service account, either
// from a tokens file (local mode) or by a Kubernetes TokenReview with audience `trellis-ca`. (Without a
// token, a verified client certificate on the TLS port proves it instead: service.ts, certs/peer-identity.ts.)
import fs from 'node:fs';
import type { AuthenticationV1Api, KubeConfig } from '@kubernetes/client-node';
import { parse as parseYaml } from 'yaml';

export const CA_AUDIENCE = 'trellis-ca';

export interface Caller {
  readonly namespace: string;
  readonly serviceAccount: string;
  /**
   * How it was proven, for the audit log: a bearer token (`tokens-file`, `token-review`), or the verified
   * client certificate of a call on the TLS port (`certificate`: renewal with the SVID it already has).
   */
  readonly via: 'tokens-file' | 'token-review' | 'certificate';
}

/** The token did not prove anything: UNAUTHENTICATED, with the reason for the audit log. */
export class AuthenticationError extends Error {
  override readonly name = 'AuthenticationError';
}

/** The authenticator could not decide (API server unreachable): UNAVAILABLE, the caller retries. */
export class AuthenticatorUnavailable extends Error {
  override readonly name = 'AuthenticatorUnavailable';
}

export interface Authenticator {
  /** Resolves the caller, or rejects with AuthenticationError / AuthenticatorUnavailable. */
  authenticate(token: string): Promise<Caller>;
}

export interface TokenEntry {
  readonly token: string;
  readonly namespace: string;
  readonly serviceAccount: string;
}

const NAME = /^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/;

/** Parses a tokens file (YAML or JSON): a list of `{token, namespace, serviceAccount}`. */
export function parseTokensFile(text: string, file = 'tokens file'): TokenEntry[] {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new Error(`${file}: not YAML/JSON: ${(err as Error).message}`, { cause: err });
  }
  if (!Array.isArray(doc)) throw new Error(`${file}: expected a list of {token, namespace, serviceAccount}`);
  const seen = new Set<string>();
  return doc.map((entry: unknown, i) => {
    const e = (entry ?? {}) as Record<string, unknown>;
    const where = `${file}: entry ${i + 1}`;
    for (const field of ['token', 'namespace', 'serviceAccount'] as const) {
      if (typeof e[field] !== 'string' || e[field] === '')
        throw new Error(`${where}: "${field}" must be a non-empty string`);
    }
    const token = e.token as string;
    const namespace = e.namespace as string;
    const serviceAccount = e.serviceAccount as string;
    if (!NAME.test(namespace)) throw new Error(`${where}: namespace "${namespace}" is not a Kubernetes name`);
    if (!NAME.test(serviceAccount))
      throw new Error(`${where}: serviceAccount "${serviceAccount}" is not a Kubernetes name`);
    if (token.length < 16) throw new Error(`${where}: the token is shorter than 16 characters`);
    if (seen.has(token)) throw new Error(`${where}: the same token appears twice`);
    seen.add(token);
    return { token, namespace, serviceAccount };
  });
}

/** Local mode: static tokens, each bound to one namespace and service account. */
export class TokensFileAuthenticator implements Authenticator {
  private readonly byToken: ReadonlyMap<string, TokenEntry>;

  constructor(entries: readonly TokenEntry[]) {
    this.byToken = new Map(entries.map((e) => [e.token, e]));
  }

  static fromFile(file: string): TokensFileAuthenticator {
    return new TokensFileAuthenticator(parseTokensFile(fs.readFileSync(file, 'utf8'), file));
  }

  async authenticate(token: string): Promise<Caller> {
    const e = this.byToken.get(token);
    if (!e) throw new AuthenticationError('unknown token');
    return { namespace: e.namespace, serviceAccount: e.serviceAccount, via: 'tokens-file' };
  }
}

const SA_USER = /^system:serviceaccount:([^:]+):([^:]+)$/;

/**
 * Kubernetes mode: a TokenReview with audience `trellis-ca`. The caller (the control plane's own
 * ServiceAccount) needs `create` on `tokenreviews` (ClusterRole `system:auth-delegator`). Only
 * ServiceAccount users are accepted; the apiserver also checks expiry, the audience, and that the
 * ServiceAccount (and a bound Pod) still exist.
 */
export class TokenReviewAuthenticator implements Authenticator {
  /** Made at the first call: the Kubernetes client is loaded only in Kubernetes mode (idle RSS, issue 14). */
  private api: Promise<AuthenticationV1Api> | undefined;

  constructor(
    private readonly kubeConfig: KubeConfig,
    private readonly audience = CA_AUDIENCE,
  ) {}

  async authenticate(token: string): Promise<Caller> {
    let review;
    try {
      this.api ??= import('@kubernetes/client-node').then((k) => this.kubeConfig.makeApiClient(k.AuthenticationV1Api));
      review = await (await this.api).createTokenReview({ body: { spec: { token, audiences: [this.audience] } } });
    } catch (err) {
      throw new AuthenticatorUnavailable(`TokenReview failed: ${(err as Error).message.split('\n')[0]}`);
    }
    const status = review.status;
    if (!status?.authenticated) throw new AuthenticationError(`TokenReview: ${status?.error || 'not authenticated'}`);
    if (!status.audiences?.includes(this.audience)) {
      throw new AuthenticationError(`TokenReview: the token is not for audience ${this.audience}`);
    }
    const m = SA_USER.exec(status.user?.username ?? '');
    if (!m)
      throw new AuthenticationError(`TokenReview: ${status.user?.username ?? '(no user)'} is not a ServiceAccount`);
    return { namespace: m[1]!, serviceAccount: m[2]!, via: 'token-review' };
  }
}
