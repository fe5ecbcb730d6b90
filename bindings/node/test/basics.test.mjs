// The package used the way a Node program uses child_process: a channel
// with half-close, exact statuses, errors by code, kill, timeout, abort.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { mkdtempSync, realpathSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { spawn, UmbilicalError } from '../index.js';
import { collect, within, roundTrip, randomBytes } from './helpers.mjs';

const LIMIT = { timeout: 30_000 };

test('sort sees EOF from end() and its output is read after it', LIMIT, async () => {
  const child = spawn('sort');
  const out = await within(10_000, 'sort', roundTrip(child, 'pear\napple\nfig\n'));
  assert.equal(out.toString(), 'apple\nfig\npear\n');
  const exit = await child.exited;
  assert.deepEqual([exit.code, exit.signal, exit.detection], [0, null, 'process']);
  assert.ok(child.pid > 0);
});

test('70 KB through cat come back byte-exact, on both channel kinds', LIMIT, async () => {
  for (const channel of ['socket', 'pipes']) {
    const data = randomBytes(70 * 1024);
    const child = spawn('cat', [], { channel });
    const out = await within(10_000, `cat over ${channel}`, roundTrip(child, data));
    assert.ok(out.equals(data), `${channel}: got ${out.length} bytes of ${data.length}`);
    assert.equal((await child.exited).code, 0);
  }
});

test('a line-by-line request/response on one channel, then half-close', LIMIT, async () => {
  // A program that answers each line at once: the caller waits for each
  // answer before sending the next.
  const child = spawn('sh', ['-c', 'while read -r l; do echo "got $l"; done; echo bye']);
  const lines = [];
  let pending = '';
  let wake = null;
  child.channel.on('data', (d) => {
    pending += d;
    let i;
    while ((i = pending.indexOf('\n')) >= 0) {
      lines.push(pending.slice(0, i));
      pending = pending.slice(i + 1);
    }
    wake?.();
  });
  const ended = new Promise((resolve) => child.channel.on('end', resolve));
  const next = (n) => within(5_000, `answer ${n}`, new Promise((resolve) => {
    wake = () => lines.length >= n && resolve();
    wake();
  }));
  for (let n = 1; n <= 20; n++) {
    child.channel.write(`line ${n}\n`);
    await next(n);
    assert.equal(lines[n - 1], `got line ${n}`);
  }
  child.channel.end();
  await within(5_000, 'end', ended);
  assert.equal(lines.at(-1), 'bye');
  assert.equal((await child.exited).code, 0);
});

test('exit codes are exact', LIMIT, async () => {
  for (const code of [0, 1, 3, 42, 255]) {
    const exit = await spawn('sh', ['-c', `exit ${code}`]).exited;
    assert.equal(exit.code, code);
    assert.equal(exit.signal, null);
  }
});

test('a death by signal is the signal by name, code null', LIMIT, async () => {
  for (const sig of ['SIGTERM', 'SIGKILL', 'SIGINT']) {
    const exit = await spawn('sh', ['-c', `kill -${sig.slice(3)} $$`]).exited;
    assert.deepEqual([exit.code, exit.signal], [null, sig]);
  }
});

// Node's test-child-process-spawn-error.js: a missing program is an error
// with a code, and nothing throws synchronously.
test('a missing program rejects with NotFound; the channel just ends', LIMIT, async () => {
  const child = spawn('surely-no-such-program-here', ['x']);
  await assert.rejects(child.spawned, { code: 'NotFound' });
  const err = await child.exited.catch((e) => e);
  assert.ok(err instanceof UmbilicalError);
  assert.equal(err.code, 'NotFound');
  assert.match(err.message, /surely-no-such-program-here/);
  child.channel.end('ignored');
  assert.equal((await collect(child.channel)).length, 0);
  assert.equal(child.pid, undefined);
});

test('a directory is NotExecutable; bad options are InvalidInput, thrown at once', LIMIT, async () => {
  await assert.rejects(spawn('/').exited, { code: 'NotExecutable' });
  assert.throws(() => spawn('cat', [], { stderr: 'loud' }), { code: 'InvalidInput' });
  assert.throws(() => spawn('cat', [], { via: 5 }), { code: 'InvalidInput' });
  assert.throws(() => spawn('cat', [], { nope: 1 }), { code: 'InvalidInput', message: /nope/ });
  assert.throws(() => spawn(''), { code: 'InvalidInput' });
  assert.throws(() => spawn('cat', [], { killSignal: 'SIGNOPE' }), { code: 'InvalidInput' });
  // A launcher spec the library refuses (an empty sudo user is not root).
  await assert.rejects(spawn('id', [], { via: 'sudo:' }).exited, { code: 'InvalidInput', message: /user is empty/ });
});

test('kill() sends SIGTERM, kill("SIGKILL") kills; after the end it rejects', LIMIT, async () => {
  const a = spawn('sleep', ['30']);
  await a.spawned;
  await a.kill();
  assert.equal((await within(5_000, 'SIGTERM', a.exited)).signal, 'SIGTERM');
  const b = spawn('sh', ['-c', 'trap "" TERM; echo ready; exec sleep 30']);
  const ready = await within(5_000, 'ready', new Promise((r) => b.channel.once('data', r)));
  assert.equal(ready.toString(), 'ready\n');
  await b.kill('SIGKILL');
  assert.equal((await within(5_000, 'SIGKILL', b.exited)).signal, 'SIGKILL');
  await assert.rejects(b.kill(), /ended/);
  await assert.rejects(b.kill('SIGNOPE'), { code: 'InvalidInput' });
});

// Node's test-child-process-spawn-timeout-kill-signal.js: `timeout` kills
// with `killSignal`.
test('timeout stops the program with killSignal and rejects with TimedOut', LIMIT, async () => {
  const started = Date.now();
  const child = spawn('sleep', ['30'], { timeout: 200, killSignal: 'SIGKILL' });
  const err = await within(10_000, 'timeout', child.exited.catch((e) => e));
  assert.equal(err.code, 'TimedOut');
  assert.equal(err.exit.signal, 'SIGKILL');
  assert.ok(Date.now() - started < 5_000);
  // A program that ends in time is not touched.
  assert.equal((await spawn('true', [], { timeout: 10_000 }).exited).code, 0);
});

// Node's test-child-process-spawn-controller.js: an AbortSignal kills the
// program; an already aborted one starts nothing.
test('an AbortSignal stops the program; one already aborted starts nothing', LIMIT, async () => {
  const controller = new AbortController();
  const child = spawn('sleep', ['30'], { signal: controller.signal });
  await child.spawned;
  controller.abort(new Error('user cancelled'));
  const err = await within(5_000, 'abort', child.exited.catch((e) => e));
  assert.equal(err.name, 'AbortError');
  assert.equal(err.exit.signal, 'SIGTERM');
  assert.equal(err.cause.message, 'user cancelled');
  const none = spawn('sh', ['-c', 'exit 9'], { signal: AbortSignal.abort() });
  await assert.rejects(none.exited, { name: 'AbortError' });
  assert.equal(none.pid, undefined);
});

test('env replaces the environment; cwd is the working directory', LIMIT, async () => {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), 'umbilical-node-')));
  try {
    const child = spawn('/bin/sh', ['-c', 'echo "$ONLY:${HOME-unset}"; pwd'], { env: { ONLY: 'this' }, cwd: dir });
    const out = await roundTrip(child, '');
    assert.equal(out.toString(), `this:unset\n${dir}\n`);
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test('stderr: pipe gives a Readable; merge puts it in the channel; ignore drops it', LIMIT, async () => {
  const script = 'echo out; echo err >&2';
  const piped = spawn('sh', ['-c', script], { stderr: 'pipe' });
  const [out, err] = await Promise.all([roundTrip(piped, ''), collect(piped.stderr)]);
  assert.deepEqual([out.toString(), err.toString()], ['out\n', 'err\n']);
  const merged = spawn('sh', ['-c', script], { stderr: 'merge' });
  assert.equal((await roundTrip(merged, '')).toString(), 'out\nerr\n');
  const ignored = spawn('sh', ['-c', script], { stderr: 'ignore' });
  assert.equal(ignored.stderr, null);
  assert.equal((await roundTrip(ignored, '')).toString(), 'out\n');
});

test('a program that ends without reading: the writer gets an error, not a hang', LIMIT, async () => {
  const child = spawn('true');
  const err = await within(10_000, 'EPIPE', new Promise((resolve) => {
    child.channel.on('error', resolve);
    const chunk = Buffer.alloc(64 * 1024);
    const pump = () => {
      while (child.channel.write(chunk)) { /* until the buffer is full */ }
      child.channel.once('drain', pump);
    };
    pump();
  }));
  assert.ok(err instanceof Error, String(err));
  assert.equal((await child.exited).code, 0);
});
