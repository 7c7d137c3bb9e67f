// What every benchmark shares: result tables, percentiles, machine info, progress on stderr, and the
// files written to bench/results/.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const resultsDir = path.join(repoRoot, 'bench', 'results');

export type Cell = string | number;

export interface Table {
  readonly title: string;
  readonly columns: readonly string[];
  readonly rows: readonly (readonly Cell[])[];
  /** Lines printed under the table (what the columns mean, caveats). */
  readonly notes?: readonly string[];
}

export interface BenchResult {
  readonly name: string;
  readonly title: string;
  readonly params: Readonly<Record<string, unknown>>;
  readonly tables: readonly Table[];
  readonly notes: readonly string[];
  /** Raw numbers for the JSON file. */
  readonly data: unknown;
}

export interface Benchmark {
  readonly name: string;
  readonly description: string;
  readonly usage: string;
  run(argv: readonly string[], progress: Progress): Promise<BenchResult>;
}

/** A bad flag or value: reported with the usage, without a stack. */
export class UsageError extends Error {}

/** A `--name` option that must be a positive integer; a UsageError naming it otherwise. */
export function positiveInt(name: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new UsageError(`--${name} must be a positive integer, not "${value}"`);
  return n;
}

// ---------------------------------------------------------------------------------------------------
// Numbers

/** Nearest-rank percentile of an ascending array (`p` in 0..100); NaN when empty. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

export interface Summary {
  readonly count: number;
  readonly min: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
  readonly mean: number;
}

export function summarize(values: readonly number[]): Summary {
  const sorted = [...values].sort((a, b) => a - b);
  const sum = sorted.reduce((a, b) => a + b, 0);
  return {
    count: sorted.length,
    min: sorted[0] ?? NaN,
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
    max: sorted[sorted.length - 1] ?? NaN,
    mean: sorted.length ? sum / sorted.length : NaN,
  };
}

export function median(values: readonly number[]): number {
  return percentile(
    [...values].sort((a, b) => a - b),
    50,
  );
}

/** A number with `digits` decimals and thousands separators; `–` for NaN. */
export function fmt(value: number, digits = 1): string {
  if (!Number.isFinite(value)) return '–';
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export function fmtInt(value: number): string {
  return fmt(value, 0);
}

export function mib(bytes: number): string {
  return fmt(bytes / 1024 / 1024, 1);
}

export function fmtBytes(bytes: number): string {
  if (!Number.isFinite(bytes)) return '–';
  if (bytes < 10 * 1024) return `${fmtInt(bytes)} B`;
  if (bytes < 10 * 1024 * 1024) return `${fmt(bytes / 1024, 1)} KiB`;
  return `${fmt(bytes / 1024 / 1024, 1)} MiB`;
}

// ---------------------------------------------------------------------------------------------------
// Tables

function isNumeric(cell: Cell): boolean {
  return typeof cell === 'number' || /^[-+]?[\d,.]+( ?[%a-zA-Z/]+)?$|^–$/.test(cell);
}

function cellText(cell: Cell): string {
  return typeof cell === 'number' ? String(cell) : cell;
}

/** A table with aligned columns for the terminal: numbers right-aligned, text left-aligned. */
export function textTable(table: Table): string {
  const cols = table.columns.length;
  const right = table.columns.map(
    (_, c) => table.rows.length > 0 && table.rows.every((row) => isNumeric(row[c] ?? '')),
  );
  const widths = table.columns.map((name, c) =>
    Math.max(name.length, ...table.rows.map((row) => cellText(row[c] ?? '').length)),
  );
  const line = (cells: readonly string[]): string =>
    cells
      .map((text, c) => (right[c] ? text.padStart(widths[c]!) : text.padEnd(widths[c]!)))
      .join('  ')
      .trimEnd();
  const out = [table.title, line(table.columns), widths.map((w) => '-'.repeat(w)).join('  ')];
  for (const row of table.rows) out.push(line(Array.from({ length: cols }, (_, c) => cellText(row[c] ?? ''))));
  for (const note of table.notes ?? []) out.push(`  ${note}`);
  return out.join('\n');
}

export function markdownTable(table: Table): string {
  const right = table.columns.map(
    (_, c) => table.rows.length > 0 && table.rows.every((row) => isNumeric(row[c] ?? '')),
  );
  const esc = (s: string): string => s.replace(/\|/g, '\\|');
  const out = [
    `### ${table.title}`,
    '',
    `| ${table.columns.map(esc).join(' | ')} |`,
    `|${right.map((r) => (r ? '---:' : '---')).join('|')}|`,
  ];
  for (const row of table.rows) out.push(`| ${table.columns.map((_, c) => esc(cellText(row[c] ?? ''))).join(' | ')} |`);
  if (table.notes?.length) out.push('', ...table.notes.map((n) => `- ${n}`));
  return out.join('\n');
}

// ---------------------------------------------------------------------------------------------------
// Machine

export interface MachineInfo {
  readonly cpuModel: string;
  readonly cores: number;
  readonly node: string;
  readonly totalMemoryBytes: number;
  readonly totalMemory: string;
  readonly platform: string;
  readonly loadAverage: readonly number[];
  readonly gitCommit: string;
  readonly gitDirty: boolean;
}

export function machineInfo(): MachineInfo {
  const cpus = os.cpus();
  let gitCommit = 'unknown';
  let gitDirty = false;
  try {
    gitCommit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: repoRoot, encoding: 'utf8' }).trim();
    gitDirty =
      execFileSync('git', ['status', '--porcelain', '--', 'control-plane'], {
        cwd: repoRoot,
        encoding: 'utf8',
      }).trim() !== '';
  } catch {
    // not a git checkout
  }
  return {
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    cores: cpus.length,
    node: process.version,
    totalMemoryBytes: os.totalmem(),
    totalMemory: `${fmt(os.totalmem() / 1024 ** 3, 1)} GiB`,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    loadAverage: os.loadavg().map((l) => Math.round(l * 100) / 100),
    gitCommit,
    gitDirty,
  };
}

export function machineLines(m: MachineInfo): string[] {
  return [
    `cpu: ${m.cpuModel} × ${m.cores} cores`,
    `memory: ${m.totalMemory}`,
    `node: ${m.node}`,
    `os: ${m.platform}; load average at start ${m.loadAverage.join(' / ')}`,
    `commit: ${m.gitCommit}${m.gitDirty ? ' (control-plane/ has uncommitted changes)' : ''}`,
  ];
}

// ---------------------------------------------------------------------------------------------------
// Progress (stderr, so stdout carries only the tables)

export class Progress {
  private readonly tty = process.stderr.isTTY === true;
  private lastPrinted = 0;
  private lastText = '';
  private readonly started = performance.now();

  private stamp(): string {
    return `[${fmt((performance.now() - this.started) / 1000, 1)}s]`;
  }

  /** A new step: always printed on its own line. */
  phase(text: string): void {
    this.clear();
    process.stderr.write(`${this.stamp()} ${text}\n`);
    this.lastText = '';
  }

  /** The state of a long step: redrawn in place on a terminal, a line every 2 s otherwise. */
  update(text: string): void {
    const now = performance.now();
    if (this.tty) {
      if (now - this.lastPrinted < 100 || text === this.lastText) return;
      process.stderr.write(`\r\x1b[K${this.stamp()} ${text}`);
    } else {
      if (now - this.lastPrinted < 2_000 || text === this.lastText) return;
      process.stderr.write(`${this.stamp()} ${text}\n`);
    }
    this.lastPrinted = now;
    this.lastText = text;
  }

  clear(): void {
    if (this.tty && this.lastText !== '') process.stderr.write('\r\x1b[K');
    this.lastText = '';
  }
}

// ---------------------------------------------------------------------------------------------------
// Results files

function today(): string {
  const d = new Date();
  const pad = (n: number): string => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

export function renderText(result: BenchResult, machine: MachineInfo): string {
  const out = [`== ${result.title}`, ...machineLines(machine).map((l) => `   ${l}`), ''];
  for (const table of result.tables) out.push(textTable(table), '');
  for (const note of result.notes) out.push(`* ${note}`);
  return out.join('\n');
}

export function renderMarkdown(result: BenchResult, machine: MachineInfo, command: string): string {
  const out = [
    `## ${result.title}`,
    '',
    `\`${command}\` — ${new Date().toISOString()}`,
    '',
    ...machineLines(machine).map((l) => `- ${l}`),
    '',
    `Parameters: ${Object.entries(result.params)
      .map(([k, v]) => `${k}=${Array.isArray(v) ? v.join(',') : String(v)}`)
      .join(', ')}`,
    '',
  ];
  for (const table of result.tables) out.push(markdownTable(table), '');
  if (result.notes.length) out.push('### Notes', '', ...result.notes.map((n) => `- ${n}`), '');
  return out.join('\n');
}

/**
 * Writes the latest result of a benchmark as `<name>.{md,json}` and appends it, dated, to
 * `history/<name>.md`. A labelled run (a variant: `--label before-fix`) goes to the history only, under its
 * label, so `<name>.md` is always the current state of the plain benchmark. Returns the paths written.
 */
export function writeResults(result: BenchResult, machine: MachineInfo, command: string, label?: string): string[] {
  const historyDir = path.join(resultsDir, 'history');
  fs.mkdirSync(historyDir, { recursive: true });
  const at = new Date().toISOString();
  const md = renderMarkdown(result, machine, command);
  const history = path.join(historyDir, `${result.name}.md`);
  const heading = `# ${today()}${label ? ` — ${label}` : ''}`;
  const previous = fs.existsSync(history)
    ? fs.readFileSync(history, 'utf8')
    : `History of \`${result.name}\` runs, oldest first.\n`;
  fs.writeFileSync(history, `${previous.trimEnd()}\n\n${heading}\n\n${md.trimEnd()}\n`);
  if (label) return [history];
  const json = {
    name: result.name,
    title: result.title,
    command,
    at,
    machine,
    params: result.params,
    tables: result.tables,
    notes: result.notes,
    data: result.data,
  };
  const base = path.join(resultsDir, result.name);
  fs.writeFileSync(`${base}.json`, JSON.stringify(json, null, 2) + '\n');
  fs.writeFileSync(`${base}.md`, md);
  return [`${base}.md`, `${base}.json`, history];
}
