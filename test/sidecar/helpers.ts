// Shared by the sidecar tests: an in-process CA (certs/, no network) to make workload certificates the way
// the control plane does, and a real control plane with the CA service in local mode.
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import {
  CertificateAuthority,
  createCsr,
  createRootCa,
  generateWorkloadKey,
  loadRootCa,
  spiffeId,
  type WorkloadIdentity,
  type WorkloadKey,
} from '../../certs/index.js';
import { startControlPlane, type RunningControlPlane } from '../../control-plane/control-plane.js';
import { createLogger, type Logger } from '../../control-plane/logger.js';
import { assemble, type WorkloadCertificate } from '../../sidecar/certificate-manager.js';

export const SHOP_CART: WorkloadIdentity = { trustDomain: 'cluster.local', namespace: 'shop', serviceAccount: 'cart' };
export const TOKEN_CART = 'token-for-shop-cart-0123456789';
export const TOKEN_TELLER = 'token-for-bank-teller-0123456789';

export async function localCa(trustDomain = 'cluster.local'): Promise<CertificateAuthority> {
  const root = await createRootCa();
  return CertificateAuthority.create(await loadRootCa(root.certPem, root.keyPem), trustDomain);
}

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

/** Log lines captured as objects. */
export function captureLogger(): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split('\n').filter(Boolean))
        lines.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  return { logger: createLogger({ level: 'debug', destination }), lines };
}

export interface CaControlPlane {
  readonly cp: RunningControlPlane;
  readonly dir: string;
  readonly tokensFile: string;
  readonly stateDir: string;
  /** Writes `token` to a token file in the temp dir and returns its path. */
  tokenFile(name: string, token: string): string;
  close(): Promise<void>;
}

export function makeTempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** A control plane with the CA (local mode: --state-dir, --tokens-file) on 127.0.0.1. */
export async function startCaControlPlane(
  options: { logger?: Logger; xdsPort?: number; dir?: string } = {},
): Promise<CaControlPlane> {
  const dir = options.dir ?? makeTempDir('trellis-sidecar-');
  const tokensFile = path.join(dir, 'tokens.yaml');
  fs.writeFileSync(
    tokensFile,
    [
      `- { token: ${TOKEN_CART}, namespace: shop, serviceAccount: cart }`,
      `- { token: ${TOKEN_TELLER}, namespace: bank, serviceAccount: teller }`,
      '',
    ].join('\n'),
  );
  const stateDir = path.join(dir, 'state');
  const cp = await startControlPlane({
    logger: options.logger ?? createLogger({ level: 'silent' }),
    xdsPort: options.xdsPort ?? 0,
    secureXdsPort: 0,
    monitoringPort: 0,
    ca: { stateDir, tokensFile },
  });
  return {
    cp,
    dir,
    tokensFile,
    stateDir,
    tokenFile(name, token) {
      const file = path.join(dir, name);
      fs.writeFileSync(file, `${token}\n`);
      return file;
    },
    close: () => cp.close(),
  };
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
