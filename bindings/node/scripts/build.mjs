// `npm run build`: builds the native module and the shim with cargo (the
// workspace at ../..) and puts them beside index.js as umbilical.node and
// umbilical-shim. `--debug` builds without optimisation.
import { spawnSync } from 'node:child_process';
import { copyFileSync, chmodSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(dirname(fileURLToPath(import.meta.url)));
const profile = process.argv.includes('--debug') ? [] : ['--release'];

// Builds with cargo and returns the paths of the artifacts it reports.
function cargo(args) {
  const run = spawnSync('cargo', ['build', '--locked', '--message-format=json-render-diagnostics', ...profile, ...args], {
    cwd: here,
    stdio: ['ignore', 'pipe', 'inherit'],
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  });
  if (run.status !== 0) {
    console.error(`cargo build ${args.join(' ')} failed (${run.error ?? `exit ${run.status}`})`);
    process.exit(1);
  }
  return run.stdout
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line))
    .filter((m) => m.reason === 'compiler-artifact');
}

const native = cargo(['-p', 'umbilical-node'])
  .filter((m) => m.target.name === 'umbilical_node' || m.target.name === 'umbilical-node')
  .flatMap((m) => m.filenames)
  .find((f) => /\.(so|dylib|dll)$/.test(f));
if (!native) {
  console.error('cargo built no cdylib for umbilical-node');
  process.exit(1);
}
copyFileSync(native, join(here, 'umbilical.node'));

const shim = cargo(['-p', 'umbilical', '--bin', 'umbilical-shim']).find((m) => m.target.name === 'umbilical-shim')?.executable;
if (!shim) {
  console.error('cargo built no umbilical-shim');
  process.exit(1);
}
const shimName = process.platform === 'win32' ? 'umbilical-shim.exe' : 'umbilical-shim';
copyFileSync(shim, join(here, shimName));
chmodSync(join(here, shimName), 0o755);
console.log(`built ${join(here, 'umbilical.node')} and ${join(here, shimName)}`);
