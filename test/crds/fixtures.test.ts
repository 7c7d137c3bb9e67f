// The examples under test/fixtures/: valid/ is a realistic bookinfo mesh that validates without a single
// issue; every file under invalid/ and warnings/ lists, in `# expect: ` header lines, exactly the lines
// `trellis validate` prints for it (without the leading file name).
import fs from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { parseAllDocuments } from 'yaml';
import { ValidationRun } from '../../crds/validate-command.js';
import { isMeshResource, validateRoutingResource } from '../../crds/validator.js';
import { repoRoot } from '../helpers/peer-paths.js';

const fixtures = path.join(repoRoot, 'test/fixtures');

function files(dir: string): string[] {
  return fs
    .readdirSync(path.join(fixtures, dir))
    .filter((f) => /\.(ya?ml|json)$/.test(f))
    .sort();
}

function expectations(text: string): string[] {
  return text
    .split('\n')
    .filter((l) => l.startsWith('# expect: '))
    .map((l) => l.slice('# expect: '.length));
}

test('there are at least 30 invalid examples, each with expectations and at least one error', (t) => {
  const invalid = files('invalid');
  t.true(invalid.length >= 30, `${invalid.length} invalid examples`);
  for (const f of invalid) {
    const expected = expectations(fs.readFileSync(path.join(fixtures, 'invalid', f), 'utf8'));
    t.true(
      expected.some((e) => !/^#\d+: warning: /.test(e)),
      `${f} expects an error`,
    );
  }
});

for (const dir of ['invalid', 'warnings']) {
  for (const f of files(dir)) {
    test(`${dir}/${f}`, (t) => {
      const text = fs.readFileSync(path.join(fixtures, dir, f), 'utf8');
      const expected = expectations(text);
      t.true(expected.length > 0, 'no # expect: lines');
      const run = new ValidationRun();
      run.addFile(f, text);
      const report = run.finish();
      t.deepEqual(
        report.lines.map((l) => (l.text.startsWith(f) ? l.text.slice(f.length) : l.text)),
        expected,
      );
      if (dir === 'warnings') t.is(report.errors, 0);
    });
  }
}

test('the valid bookinfo mesh has no issue at all, file by file and as a whole', (t) => {
  const run = new ValidationRun();
  let resources = 0;
  for (const f of files('valid')) {
    const text = fs.readFileSync(path.join(fixtures, 'valid', f), 'utf8');
    run.addFile(f, text);
    for (const doc of parseAllDocuments(text)) {
      const value: unknown = doc.toJS();
      const items =
        (value as { kind?: string; items?: unknown[] }).kind === 'List'
          ? (value as { items: unknown[] }).items
          : [value];
      for (const item of items) {
        if (!isMeshResource(item)) continue;
        resources++;
        const r = validateRoutingResource(item);
        t.deepEqual(r.issues, [], `${f}: ${r.kind} ${r.name}`);
        t.truthy(r.resource);
      }
    }
  }
  const report = run.finish();
  t.deepEqual(report.lines, []);
  t.true(report.servicesChecked);
  t.is(report.resources, resources);
  t.true(resources >= 10);
});
