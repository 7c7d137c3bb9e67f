// The README's local quickstart works as written: the shell block after `<!-- quickstart:local -->` is
// read from README.md itself, and every command in it runs from the repository root and must exit 0.
// `npx trellis` runs the package's bin (dist/, built by `npm install`); here it runs the same entry from
// the sources (`node --import tsx control-plane/main.ts`), so a stale dist/ cannot hide a broken command.
// `npm start -- … --json` must print a JSON summary with traffic in it.
import test from 'ava';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { repoRoot } from '../helpers/peer-paths.js';

interface Command {
  readonly line: string;
  readonly shell: string;
}

/** The commands of the quickstart block: one per line, the trailing `# comment` dropped. */
function quickstartCommands(readme: string): Command[] {
  const marker = readme.indexOf('<!-- quickstart:local -->');
  if (marker < 0) throw new Error('README.md has no <!-- quickstart:local --> block');
  const fence = /```sh\n([\s\S]*?)```/.exec(readme.slice(marker));
  if (!fence) throw new Error('no ```sh block after <!-- quickstart:local -->');
  return fence[1]!
    .split('\n')
    .map((l) => l.replace(/\s+#\s.*$/, '').trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((line) => ({
      line,
      shell: line.replace(/^npx trellis\b/, `${JSON.stringify(process.execPath)} --import tsx control-plane/main.ts`),
    }));
}

function run(command: string, timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', command], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
      reject(new Error(`${command}: still running after ${timeoutMs} ms\n${stderr}`));
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

const readme = fs.readFileSync(path.join(repoRoot, 'README.md'), 'utf8');

test('the quickstart block is there and names the commands a newcomer runs', (t) => {
  const lines = quickstartCommands(readme).map((c) => c.line);
  t.true(lines.some((l) => l.startsWith('npm start')));
  t.true(lines.some((l) => l.startsWith('npx trellis validate')));
  t.true(lines.some((l) => l.startsWith('npx trellis inject')));
});

test.serial('every quickstart command of the README runs in local mode', async (t) => {
  t.timeout(240_000);
  for (const { line, shell } of quickstartCommands(readme)) {
    const result = await run(shell, 200_000);
    t.is(result.code, 0, `${line}\n${result.stderr.slice(-2000)}`);
    if (line.startsWith('npm start') && line.includes('--json')) {
      const summary = JSON.parse(result.stdout.slice(result.stdout.indexOf('{'))) as Record<string, unknown>;
      t.truthy(summary, line);
      t.regex(JSON.stringify(summary), /reviews/, `${line}: the summary shows traffic to reviews`);
    }
    if (line.startsWith('npx trellis inject')) t.regex(result.stdout, /trellis-agent|trellis-proxy/, line);
  }
});
