#!/usr/bin/env node
// Generates TypeScript for the Envoy v3 protos we use, from the copy shipped in @grpc/grpc-js-xds (pinned in
// package.json), with buf and protoc-gen-es. Output: control-plane/envoy/gen/ (not committed; `npm install`
// runs this through `prepare`). The same input always gives the same output; a stamp skips unchanged runs.
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { stripValidateOptions } from './strip-validate-options.mjs';

const top = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const deps = path.join(top, 'node_modules/@grpc/grpc-js-xds/deps');
const out = path.join(top, 'control-plane/envoy/gen');
const stage = path.join(top, 'node_modules/.cache/trellis-protos');

// Proto roots, as grpc-js-xds lays them out (see ../shared/reference/grpc-js-xds.md §6).
const roots = {
  envoy: 'envoy-api/envoy',
  udpa: 'xds/udpa',
  xds: 'xds/xds',
  google: 'googleapis/google',
  validate: 'protoc-gen-validate/validate',
};

// The files Trellis speaks; their imports come along. Add a file here when a new type is needed.
const files = [
  'envoy/service/discovery/v3/discovery.proto',
  'envoy/service/discovery/v3/ads.proto',
  'envoy/service/status/v3/csds.proto',
  'envoy/config/bootstrap/v3/bootstrap.proto',
  'envoy/config/cluster/v3/cluster.proto',
  'envoy/config/endpoint/v3/endpoint.proto',
  'envoy/config/listener/v3/listener.proto',
  'envoy/config/route/v3/route.proto',
  'envoy/config/rbac/v3/rbac.proto',
  'envoy/config/trace/v3/opentelemetry.proto',
  'envoy/config/trace/v3/zipkin.proto',
  'envoy/extensions/transport_sockets/tls/v3/tls.proto',
  'envoy/extensions/transport_sockets/tls/v3/secret.proto',
  'envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto',
  'envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.proto',
  'envoy/extensions/filters/network/rbac/v3/rbac.proto',
  'envoy/extensions/filters/http/router/v3/router.proto',
  'envoy/extensions/filters/http/fault/v3/fault.proto',
  'envoy/extensions/filters/http/cors/v3/cors.proto',
  'envoy/extensions/filters/http/rbac/v3/rbac.proto',
  'envoy/extensions/filters/listener/original_dst/v3/original_dst.proto',
  'envoy/extensions/filters/listener/tls_inspector/v3/tls_inspector.proto',
  'envoy/extensions/filters/listener/http_inspector/v3/http_inspector.proto',
  'envoy/extensions/access_loggers/file/v3/file.proto',
  'envoy/extensions/access_loggers/stream/v3/stream.proto',
  'envoy/extensions/upstreams/http/v3/http_protocol_options.proto',
  'envoy/extensions/transport_sockets/raw_buffer/v3/raw_buffer.proto',
  'envoy/extensions/clusters/aggregate/v3/cluster.proto',
  'envoy/extensions/load_balancing_policies/ring_hash/v3/ring_hash.proto',
  'envoy/extensions/load_balancing_policies/maglev/v3/maglev.proto',
  'envoy/extensions/load_balancing_policies/round_robin/v3/round_robin.proto',
  'envoy/extensions/load_balancing_policies/least_request/v3/least_request.proto',
  'envoy/extensions/load_balancing_policies/wrr_locality/v3/wrr_locality.proto',
  'envoy/extensions/load_balancing_policies/pick_first/v3/pick_first.proto',
  'envoy/extensions/retry/host/previous_hosts/v3/previous_hosts.proto',
  'envoy/extensions/retry/priority/previous_priorities/v3/previous_priorities_config.proto',
];

// Trellis's own protos, kept in the repo: staged path -> source file. Generated into the same folder.
const ownProtos = {
  'trellis/ca/v1/ca.proto': 'control-plane/ca/ca.proto',
};

const pkg = JSON.parse(fs.readFileSync(path.join(deps, '../package.json'), 'utf8'));
const stampInput = JSON.stringify({
  version: pkg.version,
  files,
  own: Object.entries(ownProtos).map(([f, src]) => [f, fs.readFileSync(path.join(top, src), 'utf8')]),
  script: fs.readFileSync(fileURLToPath(import.meta.url), 'utf8'),
});
const stamp = createHash('sha256').update(stampInput).digest('hex');
const stampFile = path.join(out, '.stamp');
if (fs.existsSync(stampFile) && fs.readFileSync(stampFile, 'utf8') === stamp) {
  console.log('envoy protos: up to date');
  process.exit(0);
}

console.log(`envoy protos: staging @grpc/grpc-js-xds ${pkg.version} protos`);
fs.rmSync(stage, { recursive: true, force: true });
for (const [name, rel] of Object.entries(roots)) {
  const src = path.join(deps, rel);
  for (const f of fs.readdirSync(src, { recursive: true })) {
    if (!String(f).endsWith('.proto')) continue;
    const text = fs.readFileSync(path.join(src, String(f)), 'utf8');
    const dst = path.join(stage, name, String(f));
    fs.mkdirSync(path.dirname(dst), { recursive: true });
    fs.writeFileSync(dst, name === 'validate' ? text : stripValidateOptions(text));
  }
}
for (const [f, src] of Object.entries(ownProtos)) {
  fs.mkdirSync(path.dirname(path.join(stage, f)), { recursive: true });
  fs.copyFileSync(path.join(top, src), path.join(stage, f));
}
fs.writeFileSync(path.join(stage, 'buf.yaml'), 'version: v2\n');
const protocGenEs = path.join(top, 'node_modules/.bin/protoc-gen-es');
fs.writeFileSync(
  path.join(stage, 'buf.gen.yaml'),
  [
    'version: v2',
    'plugins:',
    `  - local: ${protocGenEs}`,
    `    out: ${out}`,
    '    include_imports: true',
    '    opt: [target=ts, import_extension=js, json_types=false]',
    '',
  ].join('\n'),
);
console.log(`envoy protos: generating TypeScript for ${files.length} files and their imports`);
fs.rmSync(out, { recursive: true, force: true });
const buf = path.join(top, 'node_modules/.bin/buf');
execFileSync(buf, ['generate', ...[...files, ...Object.keys(ownProtos)].flatMap((f) => ['--path', f])], {
  cwd: stage,
  stdio: 'inherit',
});
// An index of every generated file descriptor, so one registry knows every type that can sit in an Any.
const generated = fs
  .readdirSync(out, { recursive: true })
  .map(String)
  .filter((f) => f.endsWith('_pb.ts'))
  .sort();
const index = [
  '// Generated by scripts/gen-protos.mjs. Every file descriptor of the generated Envoy protos.',
  "import type { GenFile } from '@bufbuild/protobuf/codegenv2';",
];
const names = [];
for (const f of generated) {
  const m = /export const (file_\w+): GenFile/.exec(fs.readFileSync(path.join(out, f), 'utf8'));
  if (!m) continue;
  names.push(m[1]);
  index.push(`import { ${m[1]} } from './${f.replace(/\.ts$/, '.js')}';`);
}
index.push('', `export const allFiles: readonly GenFile[] = [\n  ${names.join(',\n  ')},\n];`, '');
fs.writeFileSync(path.join(out, 'index.ts'), index.join('\n'));
fs.writeFileSync(stampFile, stamp);
console.log(
  `envoy protos: wrote ${fs.readdirSync(out, { recursive: true }).filter((f) => String(f).endsWith('.ts')).length} files to ${path.relative(top, out)}`,
);
