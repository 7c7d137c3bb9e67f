// Multi-document YAML (or JSON) manifests → the objects of the mesh. What `kubectl apply -f` reads:
// documents separated by `---`, a `kind: List` with `items`, or (JSON) an array of objects. Pure; the
// FileSource does the I/O.
import YAML from 'yaml';
import {
  CORE_API_VERSIONS,
  formatOrigin,
  isMeshKind,
  isPolicyKind,
  type MeshObject,
  type Origin,
  type Problem,
} from '../model/objects.js';

export interface ParsedManifests {
  /** False when the text does not parse as YAML: then `objects` is empty and the caller keeps what it had. */
  readonly ok: boolean;
  readonly objects: MeshObject[];
  readonly problems: Problem[];
}

/** `file.yaml#2`: how a problem without an object says where it is. */
function locate(origin: Origin): string {
  return formatOrigin(origin);
}

/** The first line of a YAML error, without the code excerpt it introduces (`… at line 8, column 1:`). */
function firstLine(message: string): string {
  return message.split('\n', 1)[0]!.trim().replace(/:$/, '');
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** One manifest document (already parsed) → an object of the mesh, or a problem saying why not. */
export function toMeshObject(value: unknown, origin: Origin): { object?: MeshObject; problem?: Problem } {
  const at = locate(origin);
  if (!isObject(value)) {
    return { problem: { severity: 'warning', origin, message: `${at}: not a Kubernetes object; skipped` } };
  }
  const kind = value.kind;
  const apiVersion = typeof value.apiVersion === 'string' ? value.apiVersion : '';
  if (!isMeshKind(kind)) {
    const what = typeof kind === 'string' ? `kind ${kind}` : 'no kind';
    return {
      problem: { severity: 'info', origin, message: `${at}: skipped a document of ${what} (not read by the mesh)` },
    };
  }
  if (!isPolicyKind(kind) && apiVersion !== CORE_API_VERSIONS[kind]) {
    return {
      problem: {
        severity: 'info',
        origin,
        message: `${at}: skipped a ${kind} of apiVersion "${apiVersion}" (the mesh reads ${kind} ${CORE_API_VERSIONS[kind]})`,
      },
    };
  }
  const metadata = isObject(value.metadata) ? value.metadata : {};
  const name = metadata.name;
  if (typeof name !== 'string' || name === '') {
    return { problem: { severity: 'error', origin, message: `${at}: ${kind}: metadata.name: required; skipped` } };
  }
  if (kind === 'Namespace' || kind === 'Node') {
    return { object: { kind, namespace: '', name, object: value, origin } as MeshObject };
  }
  let namespace = metadata.namespace;
  if (namespace === undefined || namespace === '') namespace = 'default';
  if (typeof namespace !== 'string') {
    return {
      problem: {
        severity: 'error',
        origin,
        message: `${at}: ${kind} ${name}: metadata.namespace: must be a string; skipped`,
      },
    };
  }
  // Namespaced kinds default to `default`, as with kubectl; downstream readers see it written.
  const object = metadata.namespace === namespace ? value : { ...value, metadata: { ...metadata, namespace } };
  return { object: { kind, namespace, name, object, origin } as MeshObject };
}

/** Parses the text of `file`. Origins count documents from 0; messages (`file.yaml#1`) from 1. */
export function parseManifests(text: string, file: string): ParsedManifests {
  const documents = YAML.parseAllDocuments(text);
  const problems: Problem[] = [];
  if (!Array.isArray(documents)) return { ok: true, objects: [], problems }; // an empty stream
  documents.forEach((doc, i) => {
    const origin = { file, document: i };
    // The first error of a document; those after it mostly follow from it.
    const error = doc.errors[0];
    if (error) {
      problems.push({
        severity: 'error',
        origin,
        message: `${locate(origin)}: does not parse: ${firstLine(error.message)}`,
      });
    }
  });
  if (problems.length > 0) return { ok: false, objects: [], problems };

  const objects: MeshObject[] = [];
  for (const [i, doc] of documents.entries()) {
    const origin = { file, document: i };
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: 1000 });
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      problems.push({ severity: 'error', origin, message: `${locate(origin)}: does not parse: ${firstLine(message)}` });
      return { ok: false, objects: [], problems };
    }
    if (value === null || value === undefined) continue; // an empty document (`---` at the end)
    const items = Array.isArray(value)
      ? value
      : isObject(value) && value.kind === 'List' && Array.isArray(value.items)
        ? value.items
        : [value];
    for (const item of items) {
      const { object, problem } = toMeshObject(item, origin);
      if (object) objects.push(object);
      if (problem) problems.push(problem);
    }
  }
  return { ok: true, objects, problems };
}
