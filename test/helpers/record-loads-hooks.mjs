// Module customization hooks (node:module register) that append the URL of every module an ESM import
// resolves to the file named in `data.file`, synchronously, so the file is complete when the import is.
import fs from 'node:fs';

let file;

export function initialize(data) {
  file = data.file;
}

export async function resolve(specifier, context, nextResolve) {
  const result = await nextResolve(specifier, context);
  fs.appendFileSync(file, `${result.url}\n`);
  return result;
}
