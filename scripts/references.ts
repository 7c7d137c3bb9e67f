// `npm run docs`: writes the generated references into docs/reference/; `npm run docs -- --check` writes
// nothing and fails, naming the files, when one is stale (test/docs/references.test.ts checks the same).
// `npm run docs -- crds` (or cli, ports) renders one only.
import fs from 'node:fs';
import path from 'node:path';
import { REFERENCES } from './reference/index.js';
import { repoRoot } from './reference/markdown.js';

async function main(args: readonly string[]): Promise<number> {
  const check = args.includes('--check');
  const names = args.filter((a) => !a.startsWith('--'));
  for (const name of names)
    if (!REFERENCES[name]) throw new Error(`unknown reference ${name}: one of ${Object.keys(REFERENCES).join(', ')}`);
  let stale = 0;
  for (const [name, reference] of Object.entries(REFERENCES)) {
    if (names.length > 0 && !names.includes(name)) continue;
    const file = path.join(repoRoot, reference.file);
    const text = await reference.render();
    const current = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : undefined;
    if (current === text) {
      console.log(`${reference.file}: up to date`);
    } else if (check) {
      stale++;
      console.error(`${reference.file}: stale (npm run docs rewrites it)`);
    } else {
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, text);
      console.log(`${reference.file}: written`);
    }
  }
  return stale > 0 ? 1 : 0;
}

process.exitCode = await main(process.argv.slice(2));
