// Bulk echo through `cat`: umbilical's channel against child_process.spawn
// with pipes, measured in the same run (median of a few rounds each).
// Prints figures and the ratio; asserts nothing (speed is not a test).
import { spawn as cpSpawn } from 'node:child_process';
import { spawn } from '../index.js';

const MB = Number(process.env.ECHO_MB ?? 32);
const ROUNDS = Number(process.env.ECHO_ROUNDS ?? 5);
const data = Buffer.alloc(MB << 20, 'x');
const CHUNK = 64 * 1024;

// Writes `data` in chunks with backpressure, ends, and counts what comes back.
async function echo(writable, readable) {
  const counted = (async () => {
    let n = 0;
    for await (const part of readable) n += part.length;
    return n;
  })();
  for (let off = 0; off < data.length; off += CHUNK) {
    if (!writable.write(data.subarray(off, off + CHUNK))) {
      await new Promise((resolve) => writable.once('drain', resolve));
    }
  }
  writable.end();
  return counted;
}

const runs = {
  'child_process.spawn (pipes)': async () => {
    const child = cpSpawn('cat', { stdio: ['pipe', 'pipe', 'inherit'] });
    const done = new Promise((resolve) => child.on('close', resolve));
    const n = await echo(child.stdin, child.stdout);
    await done;
    return n;
  },
  'umbilical (socket)': async () => {
    const child = spawn('cat');
    const n = await echo(child.channel, child.channel);
    await child.exited;
    return n;
  },
  'umbilical (pipes)': async () => {
    const child = spawn('cat', [], { channel: 'pipes' });
    const n = await echo(child.channel, child.channel);
    await child.exited;
    return n;
  },
};

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const rates = {};
for (let round = 0; round < ROUNDS; round++) {
  // Interleaved, so drift in the machine's load hits each the same.
  for (const [name, run] of Object.entries(runs)) {
    const start = process.hrtime.bigint();
    const n = await run();
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    if (n !== data.length) throw new Error(`${name}: echoed ${n} bytes of ${data.length}`);
    (rates[name] ??= []).push(n / 2 ** 20 / seconds);
  }
}
const baseline = median(rates['child_process.spawn (pipes)']);
console.log(`bulk echo through cat, ${MB} MiB, median of ${ROUNDS} rounds (node ${process.version})`);
for (const [name, xs] of Object.entries(rates)) {
  console.log(`  ${name.padEnd(30)} ${median(xs).toFixed(0).padStart(6)} MiB/s  ${(median(xs) / baseline).toFixed(2)}x child_process`);
}
