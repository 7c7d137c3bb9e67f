// Where the CA's key and certificate live (the I/O that certs/ leaves out):
// - local mode: root-cert.pem / root-key.pem under --state-dir (key mode 0600), made on first start, reused;
// - Kubernetes mode: Secret `trellis-ca` in `trellis-system`, created once (create-if-absent; a 409 means
//   another replica won the race, so read its Secret: every replica signs with the same CA);
// - plug-in: ca-cert.pem, ca-key.pem, root-cert.pem, cert-chain.pem from a directory (Istio's `cacerts`).
import fs from 'node:fs';
import path from 'node:path';
import type { KubeConfig } from '@kubernetes/client-node';
import {
  createRootCa,
  loadPluginCa,
  loadRootCa,
  PluginCaError,
  type CaMaterial,
  type KeyType,
} from '../../certs/index.js';
import type { Logger } from '../logger.js';
import { KubeApiError, kubeRequest } from '../kube/http.js';

export const ROOT_CERT_FILE = 'root-cert.pem';
export const ROOT_KEY_FILE = 'root-key.pem';
export const CA_SECRET_NAMESPACE = 'trellis-system';
export const CA_SECRET_NAME = 'trellis-ca';

export interface LoadedCa {
  readonly material: CaMaterial;
  /** Where it came from, for the log: a path, `secret trellis-system/trellis-ca`, or a plug-in directory. */
  readonly source: string;
  /** True when this call created it. */
  readonly created: boolean;
}

function writeAtomic(file: string, data: string, mode: number): void {
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, data, { mode, flag: 'w' });
  fs.chmodSync(tmp, mode);
  fs.renameSync(tmp, file);
}

/** Local mode: the self-signed root under `stateDir`, created (key mode 0600) when neither file exists. */
export async function loadOrCreateLocalCa(
  stateDir: string,
  options: { keyType?: KeyType; logger?: Logger } = {},
): Promise<LoadedCa> {
  const certFile = path.join(stateDir, ROOT_CERT_FILE);
  const keyFile = path.join(stateDir, ROOT_KEY_FILE);
  fs.mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const hasCert = fs.existsSync(certFile);
  const hasKey = fs.existsSync(keyFile);
  if (hasCert !== hasKey) {
    const missing = hasCert ? keyFile : certFile;
    throw new PluginCaError(missing, `is missing while its pair exists; restore it or remove both to make a new CA`);
  }
  if (hasCert) {
    const mode = fs.statSync(keyFile).mode & 0o777;
    if (mode & 0o077)
      options.logger?.warn({ file: keyFile, mode: mode.toString(8) }, 'ca: the CA key is readable by others');
    const material = await loadRootCa(fs.readFileSync(certFile, 'utf8'), fs.readFileSync(keyFile, 'utf8')).catch(
      (err: unknown) => {
        throw err instanceof PluginCaError ? new PluginCaError(path.join(stateDir, err.file), err.detail) : err;
      },
    );
    return { material, source: stateDir, created: false };
  }
  const root = await createRootCa({ keyType: options.keyType });
  writeAtomic(keyFile, root.keyPem, 0o600);
  writeAtomic(certFile, root.certPem, 0o644);
  return { material: await loadRootCa(root.certPem, root.keyPem), source: stateDir, created: true };
}

interface SecretJson {
  data?: Record<string, string>;
}

function fromSecret(secret: SecretJson): { certPem: string; keyPem: string } {
  const cert = secret.data?.[ROOT_CERT_FILE];
  const key = secret.data?.[ROOT_KEY_FILE];
  const where = `secret ${CA_SECRET_NAMESPACE}/${CA_SECRET_NAME}`;
  if (!cert || !key) throw new PluginCaError(where, `needs the keys ${ROOT_CERT_FILE} and ${ROOT_KEY_FILE}`);
  return { certPem: Buffer.from(cert, 'base64').toString('utf8'), keyPem: Buffer.from(key, 'base64').toString('utf8') };
}

/**
 * Kubernetes mode: reads Secret trellis-system/trellis-ca; when absent, makes a root and creates the Secret;
 * when the create returns 409 (another replica was first), reads theirs.
 */
export async function loadOrCreateKubeCa(
  kubeConfig: KubeConfig,
  options: { keyType?: KeyType; namespace?: string; name?: string } = {},
): Promise<LoadedCa> {
  const namespace = options.namespace ?? CA_SECRET_NAMESPACE;
  const name = options.name ?? CA_SECRET_NAME;
  const source = `secret ${namespace}/${name}`;
  const secretPath = `/api/v1/namespaces/${namespace}/secrets/${name}`;
  const read = async (): Promise<SecretJson | undefined> => {
    try {
      return await kubeRequest<SecretJson>(kubeConfig, { path: secretPath });
    } catch (err) {
      if (err instanceof KubeApiError && err.statusCode === 404) return undefined;
      throw err;
    }
  };
  const load = async (s: SecretJson, created: boolean): Promise<LoadedCa> => {
    const { certPem, keyPem } = fromSecret(s);
    const material = await loadRootCa(certPem, keyPem).catch((err: unknown) => {
      throw err instanceof PluginCaError ? new PluginCaError(`${source} (${err.file})`, err.detail) : err;
    });
    return { material, source, created };
  };
  const existing = await read();
  if (existing) return load(existing, false);
  const root = await createRootCa({ keyType: options.keyType });
  const body = {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name, namespace, labels: { 'app.kubernetes.io/part-of': 'trellis' } },
    type: 'Opaque',
    data: {
      [ROOT_CERT_FILE]: Buffer.from(root.certPem).toString('base64'),
      [ROOT_KEY_FILE]: Buffer.from(root.keyPem).toString('base64'),
    },
  };
  try {
    const made = await kubeRequest<SecretJson>(kubeConfig, {
      method: 'POST',
      path: `/api/v1/namespaces/${namespace}/secrets`,
      body,
    });
    return load(made, true);
  } catch (err) {
    if (!(err instanceof KubeApiError && err.statusCode === 409)) throw err;
    const theirs = await read();
    if (!theirs) throw new Error(`${source}: create returned 409 but the Secret cannot be read`, { cause: err });
    return load(theirs, false);
  }
}

/** Plug-in CA: ca-cert.pem, ca-key.pem, root-cert.pem and (optional) cert-chain.pem from `dir`. */
export async function loadPluginCaDir(dir: string): Promise<LoadedCa> {
  const file = (name: string, optional = false): { file: string; pem: string } | undefined => {
    const p = path.join(dir, name);
    try {
      return { file: p, pem: fs.readFileSync(p, 'utf8') };
    } catch (err) {
      if (optional && (err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new PluginCaError(
        p,
        (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'is missing' : (err as Error).message,
      );
    }
  };
  const material = await loadPluginCa({
    caCert: file('ca-cert.pem')!,
    caKey: file('ca-key.pem')!,
    rootCert: file('root-cert.pem')!,
    certChain: file('cert-chain.pem', true),
  });
  return { material, source: dir, created: false };
}
