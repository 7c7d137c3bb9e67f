// `npm start` runs `trellis demo`: the demo mesh must really split traffic as its YAML says, and follow edits.
import test from 'ava';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { silentLogger } from '../../control-plane/logger.js';
import { packageRoot, runDemo } from '../../examples/demo/run.js';
import YAML from 'yaml';
import { assertServedResourcesValid, type JsonResource } from '../helpers/control-plane.js';
import { eventually } from '../helpers/process.js';

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

test('the demo mesh splits calls 80/20 and follows an edit of its YAML', async (t) => {
  const [p1, p2] = [await freePort(), await freePort()];
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'trellis-demo-'));
  const file = path.join(dir, 'static-resources.yaml');
  const yaml = (await fs.readFile(path.join(packageRoot(), 'examples/demo/static-resources.yaml'), 'utf8'))
    .replace('portValue: 50051', `portValue: ${p1}`)
    .replace('portValue: 50052', `portValue: ${p2}`);
  await fs.writeFile(file, yaml);
  await assertServedResourcesValid((YAML.parse(yaml) as { resources: JsonResource[] }).resources);
  const lines: string[] = [];
  const demo = await runDemo({
    logger: silentLogger,
    staticResources: file,
    xdsPort: 0,
    monitoringPort: 0,
    echoPorts: [p1, p2],
    durationMs: 0,
    callIntervalMs: 0,
    print: (line) => lines.push(line),
  });
  t.teardown(async () => {
    await demo.stop();
    await fs.rm(dir, { recursive: true, force: true });
  });
  const total = (): number => [...demo.tally.values()].reduce((a, b) => a + b, 0);
  await eventually(() => total() >= 400, 30_000, '400 calls');
  const share = (demo.tally.get('echo-v2') ?? 0) / total();
  t.log(`echo-v2 share over ${total()} calls: ${(share * 100).toFixed(1)}%`);
  // 20% expected; ±10 points is over 5 standard deviations at 400 calls.
  t.true(share > 0.1 && share < 0.3, `echo-v2 share ${share}`);

  // Send everything to v2 by editing the file in place, as a user would.
  const tmp = `${file}.tmp`;
  await fs.writeFile(tmp, yaml.replace('weight: 80', 'weight: 0').replace('weight: 20', 'weight: 100'));
  await fs.rename(tmp, file);
  // After the edit has taken effect, 100 further calls all reach v2.
  await eventually(
    async () => {
      const v1 = demo.tally.get('echo-v1') ?? 0;
      const v2 = demo.tally.get('echo-v2') ?? 0;
      await eventually(() => (demo.tally.get('echo-v2') ?? 0) >= v2 + 100, 10_000, '100 more calls');
      return (demo.tally.get('echo-v1') ?? 0) === v1;
    },
    15_000,
    'a run of 100 calls all answered by echo-v2',
  );
  t.true(lines.some((l) => l.startsWith('control plane: xDS on 127.0.0.1:')));
});
