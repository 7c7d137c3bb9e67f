// Removes protoc-gen-validate annotations from a .proto source text.
//
// Why: the Envoy protos shipped in @grpc/grpc-js-xds use validate options (e.g. `ignore_empty`) that the
// validate.proto shipped beside them does not define yet. protobufjs ignores unknown option fields, but a
// strict compiler (buf) refuses them. Our TypeScript code never reads these options (Envoy's validation
// runs in the Go checker under tools/peers/), so the copy we compile for code generation drops them.

/** Index just past the string literal that starts at `i` (a quote character). */
function skipString(text, i) {
  const quote = text[i];
  let j = i + 1;
  while (j < text.length && text[j] !== quote) j += text[j] === '\\' ? 2 : 1;
  return j + 1;
}

/** Index just past the comment that starts at `i`, or `i` when no comment starts there. */
function skipComment(text, i) {
  if (text.startsWith('//', i)) {
    const end = text.indexOf('\n', i);
    return end === -1 ? text.length : end;
  }
  if (text.startsWith('/*', i)) return text.indexOf('*/', i + 2) + 2;
  return i;
}

/** Index just past one option value: a balanced `{...}` aggregate or a scalar ending at `,`, `]` or `;`. */
function skipValue(text, i) {
  while (/\s/.test(text[i])) i++;
  if (text[i] !== '{') {
    while (i < text.length && !',];'.includes(text[i]))
      i = text[i] === '"' || text[i] === "'" ? skipString(text, i) : i + 1;
    return i;
  }
  let depth = 0;
  while (i < text.length) {
    const c = text[i];
    if (c === '"' || c === "'") {
      i = skipString(text, i);
      continue;
    }
    const afterComment = skipComment(text, i);
    if (afterComment !== i) {
      i = afterComment;
      continue;
    }
    i++;
    if (c === '{') depth++;
    else if (c === '}' && --depth === 0) return i;
  }
  throw new Error('unbalanced braces in option value');
}

export function stripValidateOptions(text) {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (c === '"' || c === "'") {
      const j = skipString(text, i);
      out += text.slice(i, j);
      i = j;
      continue;
    }
    const afterComment = skipComment(text, i);
    if (afterComment !== i) {
      out += text.slice(i, afterComment);
      i = afterComment;
      continue;
    }
    if (!text.startsWith('(validate.', i)) {
      out += c;
      i++;
      continue;
    }
    // The option name runs to `=`, e.g. `(validate.rules).string.min_len`.
    const eq = text.indexOf('=', i);
    const end = skipValue(text, eq + 1);
    const statement = /option\s*$/.exec(out);
    if (statement) {
      // `option (validate.required) = true;` as a statement: drop it with its semicolon.
      out = out.slice(0, statement.index);
      i = text.indexOf(';', end) + 1;
      continue;
    }
    // An entry of a `[...]` field option list: drop it and one separating comma.
    i = end;
    const next = /^\s*,/.exec(text.slice(i));
    if (next) i += next[0].length;
    else out = out.replace(/,\s*$/, '');
    // A list left empty disappears with its brackets.
    const open = /\[\s*$/.exec(out);
    const close = /^\s*\]/.exec(text.slice(i));
    if (open && close) {
      out = out.slice(0, open.index);
      i += close[0].length;
    }
  }
  return out;
}
