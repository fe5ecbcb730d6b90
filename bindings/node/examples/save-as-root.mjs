// The VS Code "Retry as Sudo" case: write a file the user may not write,
// through `sudo tee`, and tell "sudo refused" apart from "tee failed".
//
//   node examples/save-as-root.mjs PATH [--via sudo:USER]   (text on stdin)
//
// With the shim (as here), sudo's refusal is an error with code
// 'LauncherRefused', while tee's own failure is an exit code with its
// stderr: two different things to tell the user.
import { spawn } from '../index.js';

const [path, flag, via = 'sudo'] = process.argv.slice(2);
if (!path || (flag !== undefined && flag !== '--via')) {
  console.error('usage: save-as-root.mjs PATH [--via sudo:USER]  (the text on stdin)');
  process.exit(2);
}

const parts = [];
for await (const part of process.stdin) parts.push(part);

// tee's copy of the text goes to /dev/null: only its errors matter.
const child = spawn('sh', ['-c', 'tee -- "$1" >/dev/null', 'sh', path], {
  via,
  shim: 'on',
  stderr: 'pipe',
  // A GUI would show a dialog here; this example reads no password.
  askpass: async (prompt) => {
    console.error(`(${prompt.launcher} asks: ${prompt.text.trim()} — declined in this example)`);
    return null;
  },
});
child.channel.end(Buffer.concat(parts));
child.channel.resume();
let stderr = '';
child.stderr.on('data', (d) => (stderr += d));

try {
  const exit = await child.exited;
  if (exit.code === 0) {
    console.log(`saved ${path} as ${via}`);
  } else {
    console.error(`tee failed (${exit.description}): ${stderr.trim()}`);
    process.exit(1);
  }
} catch (e) {
  if (e.code === 'LauncherRefused') {
    console.error(`sudo refused: ${e.message}`);
    process.exit(3);
  }
  throw e;
}
