// Compiled by `npm run typecheck` (tsc --noEmit): index.d.ts describes the
// API as the tests and the README use it.
import { spawn, Child, Exit, Prompt, UmbilicalError } from '../index.js';

async function uses(): Promise<void> {
  const child: Child = spawn('sort', [], {
    via: ['ssh:ops@db1', 'sudo:postgres'],
    env: { LANG: 'C' },
    cwd: '/',
    stderr: 'pipe',
    channel: 'socket',
    shim: 'auto',
    timeout: 1000,
    killSignal: 'SIGKILL',
    signal: AbortSignal.timeout(5000),
    askpass: async (prompt: Prompt) => (prompt.secret ? 'hunter2' : null),
  });
  child.channel.end('pear\napple\n');
  child.stderr?.resume();
  await child.spawned;
  const pid: number | undefined = child.pid;
  await child.kill('SIGTERM');
  await child.kill(9);
  try {
    const exit: Exit = await child.exited;
    const code: number | null = exit.code;
    const signal: NodeJS.Signals | null = exit.signal;
    console.log(pid, code, signal, exit.detection, exit.statusLost, exit.description);
  } catch (e) {
    if (e instanceof UmbilicalError && e.code === 'LauncherRefused') console.log(e.message);
  }
  spawn('true', { stderr: 'ignore' });
}

void uses;
