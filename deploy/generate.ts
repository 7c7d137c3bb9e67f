// Writes deploy/install.yaml and the Helm chart deploy/helm/trellis/ from deploy/manifest.ts (`npm run deploy`).
// test/deploy/generate.test.ts fails when the committed files differ from what this produces.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chartFiles, CHART_NAME } from './helm.js';
import { installObjects } from './manifest.js';
import { renderObjects } from './render.js';

export const deployDir = path.dirname(fileURLToPath(import.meta.url));
export const INSTALL_FILE = 'install.yaml';
export const CHART_DIR = path.join('helm', CHART_NAME);

/** Every generated file, by path relative to deploy/. */
export function generatedFiles(): Map<string, string> {
  const files = new Map<string, string>([[INSTALL_FILE, renderObjects(installObjects())]]);
  for (const [name, text] of chartFiles()) files.set(path.join(CHART_DIR, name), text);
  return files;
}

/** Writes the files; removes files of the chart the generator no longer makes. Returns what it wrote. */
export function writeGenerated(dir = deployDir): string[] {
  const files = generatedFiles();
  const chart = path.join(dir, CHART_DIR);
  if (fs.existsSync(chart)) {
    for (const entry of fs.readdirSync(chart, { recursive: true, withFileTypes: true })) {
      const file = path.join(entry.parentPath, entry.name);
      if (entry.isFile() && !files.has(path.relative(dir, file))) fs.rmSync(file);
    }
  }
  const written: string[] = [];
  for (const [name, text] of files) {
    const file = path.join(dir, name);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, text);
    written.push(file);
  }
  return written;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  for (const file of writeGenerated()) console.log(`wrote ${path.relative(process.cwd(), file)}`);
}
