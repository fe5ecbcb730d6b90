// Through real launchers (scripts/launchers.sh sets them up, as root): the
// program runs as the target user, its status is exact through the shim,
// a kill reaches it, a refusal is told apart from the program's failure,
// and a launcher's question reaches `askpass`. Without the set-up each
// test prints SKIP with the reason.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from '../index.js';
import { collect, within, roundTrip, randomBytes } from './helpers.mjs';

const LIMIT = { timeout: 60_000 };
const user = process.env.UMBILICAL_TEST_USER;
const rootOnly = process.getuid?.() === 0 ? null : 'not root';
const noUser = user ? rootOnly : 'UMBILICAL_TEST_USER unset (scripts/launchers.sh start, as root)';

test('through sudo with the shim: the target user, exact status, half-close', LIMIT, async (t) => {
  if (noUser) return t.skip(noUser);
  const data = randomBytes(70 * 1024);
  const child = spawn('sh', ['-c', 'id -un >&2; cat; exit 7'], { via: `sudo:${user}`, shim: 'on', stderr: 'pipe' });
  const [out, err] = await within(30_000, 'sudo', Promise.all([roundTrip(child, data), collect(child.stderr)]));
  assert.ok(out.equals(data), `${out.length} bytes of ${data.length}`);
  assert.equal(err.toString(), `${user}\n`);
  const exit = await child.exited;
  assert.deepEqual([exit.code, exit.signal, exit.detection], [7, null, 'shim']);
  assert.ok(child.pid > 0, 'the program\'s pid, as the shim reports it');
  assert.match(child.shimOrigin, /umbilical-shim/);
});

test('through sudo with the shim: SIGKILL and SIGTERM reach the program, exactly', LIMIT, async (t) => {
  if (noUser) return t.skip(noUser);
  for (const sig of ['SIGTERM', 'SIGKILL']) {
    const child = spawn('sh', ['-c', 'echo up; exec sleep 30'], { via: `sudo:${user}`, shim: 'on' });
    await within(30_000, 'up', new Promise((r) => child.channel.once('data', r)));
    await child.kill(sig);
    const exit = await within(10_000, `${sig} through sudo`, child.exited);
    assert.deepEqual([exit.code, exit.signal, exit.detection], [null, sig, 'shim']);
  }
});

test('a refusal is LauncherRefused; a missing program behind sudo is NotFound', LIMIT, async (t) => {
  if (noUser) return t.skip(noUser);
  await assert.rejects(
    within(30_000, 'refusal', spawn('true', [], { via: 'sudo:umbilical-no-such-user', shim: 'on' }).exited),
    { code: 'LauncherRefused' },
  );
  await assert.rejects(
    within(30_000, 'missing', spawn('surely-no-such-program', [], { via: `sudo:${user}`, shim: 'on' }).exited),
    { code: 'NotFound' },
  );
});

test('ssh asks askpass for the host key and the password; the channel holds', LIMIT, async (t) => {
  const port = process.env.UMBILICAL_TEST_SSH_PASSWORD_PORT;
  const pwUser = process.env.UMBILICAL_TEST_PROMPT_USER;
  const file = process.env.UMBILICAL_TEST_PROMPT_PASSWORD_FILE;
  if (!port || !pwUser || !file) return t.skip('UMBILICAL_TEST_SSH_PASSWORD_PORT unset (scripts/launchers.sh start)');
  const password = readFileSync(file, 'utf8').trim();
  // An ssh that keeps its known hosts in a fresh directory and uses no key:
  // the host key is new (a question) and the password is the only way in.
  const dir = mkdtempSync(join(tmpdir(), 'umbilical-node-ssh-'));
  const path = process.env.PATH;
  try {
    const wrapper = join(dir, 'ssh');
    writeFileSync(
      wrapper,
      `#!/bin/sh\nexec /usr/bin/ssh -o UserKnownHostsFile=${dir}/known_hosts -o GlobalKnownHostsFile=/dev/null ` +
        '-o PubkeyAuthentication=no -o IdentityFile=/dev/null -o LogLevel=ERROR "$@"\n',
    );
    chmodSync(wrapper, 0o755);
    process.env.PATH = `${dir}:${path}`;
    const asked = [];
    // Through the shim: its askpass helper is the package's shim, not node.
    const child = spawn('sh', ['-c', 'id -un; cat'], {
      via: `ssh:${pwUser}@127.0.0.1:${port}`,
      shim: 'on',
      askpass: async (prompt) => {
        asked.push(prompt);
        return prompt.secret ? password : 'yes';
      },
    });
    const out = await within(30_000, 'ssh with a password', roundTrip(child, 'over ssh\n'));
    assert.equal(out.toString(), `${pwUser}\nover ssh\n`);
    const exit = await child.exited;
    assert.deepEqual([exit.code, exit.detection], [0, 'shim']);
    assert.ok(asked.some((p) => p.secret && p.launcher === 'ssh' && /password/i.test(p.text)), JSON.stringify(asked));
    assert.ok(asked.some((p) => !p.secret), `the host-key question: ${JSON.stringify(asked)}`);
    // A declined question is a refusal, bounded.
    writeFileSync(join(dir, 'known_hosts'), '');
    const declined = spawn('true', [], { via: `ssh:${pwUser}@127.0.0.1:${port}`, shim: 'on', askpass: () => null });
    await assert.rejects(within(30_000, 'declined', declined.exited), { code: 'LauncherRefused' });
  } finally {
    process.env.PATH = path;
    rmSync(dir, { recursive: true, force: true });
  }
});
