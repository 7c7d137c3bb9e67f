// Kubeconfig files of a cluster: one cluster entry (server + CA), one user (a bearer token or a client
// certificate) and one current context. Written 0600. Shared by the local cluster and test/helpers/cluster.ts.
import fs from 'node:fs';
import { stringify as toYaml } from 'yaml';

export type KubeconfigUser = { readonly token: string } | { readonly certFile: string; readonly keyFile: string };

export interface KubeconfigSpec {
  /** https://host:port */
  readonly server: string;
  readonly caPem: string;
  readonly user: KubeconfigUser;
  /** Name of the cluster and context entries. */
  readonly name: string;
  /** Name of the user entry; 'admin' by default. */
  readonly userName?: string;
  readonly namespace?: string;
}

/** The YAML text of a kubeconfig (certificates are embedded, so the file stands alone). */
export function kubeconfigYaml(spec: KubeconfigSpec): string {
  const userName = spec.userName ?? 'admin';
  const user =
    'token' in spec.user
      ? { token: spec.user.token }
      : {
          'client-certificate-data': fs.readFileSync(spec.user.certFile).toString('base64'),
          'client-key-data': fs.readFileSync(spec.user.keyFile).toString('base64'),
        };
  return toYaml({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      {
        name: spec.name,
        cluster: { server: spec.server, 'certificate-authority-data': Buffer.from(spec.caPem).toString('base64') },
      },
    ],
    users: [{ name: userName, user }],
    contexts: [
      {
        name: spec.name,
        context: { cluster: spec.name, user: userName, ...(spec.namespace ? { namespace: spec.namespace } : {}) },
      },
    ],
    'current-context': spec.name,
  });
}

export function writeKubeconfig(file: string, spec: KubeconfigSpec): void {
  fs.writeFileSync(file, kubeconfigYaml(spec), { mode: 0o600 });
}
