// Many children at once on the shared runtime: byte-exact, all exits exact.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from '../index.js';
import { within, roundTrip, randomBytes } from './helpers.mjs';

test('100 children at once through cat, byte-exact', { timeout: 120_000 }, async () => {
  const runs = Array.from({ length: 100 }, async (_, i) => {
    const data = randomBytes(32 * 1024 + i);
    const child = spawn('sh', ['-c', `cat; exit ${i % 7}`]);
    const out = await roundTrip(child, data);
    assert.ok(out.equals(data), `child ${i}: ${out.length} bytes of ${data.length}`);
    assert.equal((await child.exited).code, i % 7);
  });
  await within(100_000, '100 children', Promise.all(runs));
});
