// The generated references (docs/reference/, scripts/reference/) are what their generators make from the
// code now: the CRD schemas, the commander program, api/ and the prom-client metrics. A stale one fails
// here (`npm run docs` rewrites them). The metric names are also checked by a plain text search of the
// product's sources, independent of the generator's syntax-tree walk: every name the code writes is in
// the reference, and every name in the reference is in the code.
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { REFERENCES } from '../../scripts/reference/index.js';
import { repoRoot } from '../../scripts/reference/markdown.js';
import { PRODUCT_FOLDERS } from '../../scripts/reference/ports-metrics-labels.js';
import { CRD_FILES } from '../../crds/generate.js';
import { buildProgram } from '../../control-plane/cli.js';

for (const [name, reference] of Object.entries(REFERENCES)) {
  test(`${reference.file} is what scripts/reference makes of the code (npm run docs)`, async (t) => {
    const expected = await reference.render();
    const file = path.join(repoRoot, reference.file);
    t.true(fs.existsSync(file), `${reference.file} is missing: npm run docs writes it`);
    const actual = fs.readFileSync(file, 'utf8');
    if (actual === expected) {
      t.pass();
      return;
    }
    // Name the first line that differs: what a reader of the failure needs to see.
    const a = actual.split('\n');
    const e = expected.split('\n');
    const line = e.findIndex((l, i) => l !== a[i]);
    t.fail(
      `${reference.file} (${name}) is stale at line ${line + 1}; npm run docs rewrites it.\n` +
        `  file:      ${a[line] ?? '(end of file)'}\n  generated: ${e[line] ?? '(end of file)'}`,
    );
  });
}

function productSources(): string {
  const texts: string[] = [];
  const visit = (dir: string): void => {
    for (const entry of fs.readdirSync(path.join(repoRoot, dir), { withFileTypes: true })) {
      const rel = `${dir}/${entry.name}`;
      if (rel === 'control-plane/envoy/gen' || entry.name === 'node_modules') continue;
      if (entry.isDirectory()) visit(rel);
      else if (entry.name.endsWith('.ts')) texts.push(fs.readFileSync(path.join(repoRoot, rel), 'utf8'));
    }
  };
  for (const folder of PRODUCT_FOLDERS) if (fs.existsSync(path.join(repoRoot, folder))) visit(folder);
  return texts.join('\n');
}

test('every metric name the code writes is in the reference, and every one listed is in the code', (t) => {
  const sources = productSources();
  const doc = fs.readFileSync(path.join(repoRoot, REFERENCES.ports!.file), 'utf8');
  const listed = new Set([...doc.matchAll(/^- `(trellis_[a-z0-9_]+)`/gm)].map((m) => m[1]!));
  const written = [...sources.matchAll(/new (?:Counter|Gauge|Histogram|Summary)\(\{\s*name: (['`])(.*?)\1/gs)].map(
    (m) => m[2]!,
  );
  const literal = new Set(written.filter((n) => !n.includes('${')));
  const tails = written.filter((n) => n.includes('${')).map((n) => n.slice(n.lastIndexOf('}') + 1));
  t.true(literal.size > 10 && tails.length > 10, 'the search finds the metrics');
  for (const name of literal) t.true(listed.has(name), `${name} (in the code) is in the reference`);
  for (const tail of tails)
    t.true(
      [...listed].some((n) => n.endsWith(tail)),
      `…${tail} (a template in the code) is in the reference`,
    );
  for (const name of listed) {
    t.true(literal.has(name) || tails.some((tail) => name.endsWith(tail)), `${name} (in the reference) is in the code`);
  }
});

test('every CRD kind and every command of the program has its section', (t) => {
  const crds = fs.readFileSync(path.join(repoRoot, REFERENCES.crds!.file), 'utf8');
  for (const kind of Object.keys(CRD_FILES)) t.regex(crds, new RegExp(`^## ${kind}$`, 'm'));
  const cli = fs.readFileSync(path.join(repoRoot, REFERENCES.cli!.file), 'utf8');
  for (const command of buildProgram().commands) t.regex(cli, new RegExp(`^## trellis ${command.name()}$`, 'm'));
});
