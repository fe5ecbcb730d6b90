'use strict';
// The umbilical package: spawn() starts a program (directly or through
// launchers) with one full-duplex channel on its stdin/stdout. The native
// module (src/lib.rs) does the work on one shared tokio runtime; this file
// gives it Node's shapes: a stream.Duplex, a Promise of the exit, Error
// codes, signal names, AbortSignal and timeout.

const { Duplex, Readable } = require('node:stream');
const { Socket } = require('node:net');
const { constants } = require('node:os');
const { join } = require('node:path');
const { existsSync } = require('node:fs');

const native = require('./umbilical.node');

const CHUNK = 64 * 1024;
const SIGNALS = constants.signals;
const SIGNAL_NAMES = Object.fromEntries(Object.entries(SIGNALS).map(([name, n]) => [n, name]));

// The shim this package built beside itself (npm run build): the default
// shim where none is named, and what is copied where the program runs.
const BUNDLED_SHIM = join(__dirname, process.platform === 'win32' ? 'umbilical-shim.exe' : 'umbilical-shim');

/** An error from umbilical: `code` says which (`NotFound`, `LauncherRefused`, ...). */
class UmbilicalError extends Error {
  constructor(code, message, options) {
    super(message, options);
    this.name = 'UmbilicalError';
    this.code = code;
  }
}

// The native side rejects with "umbilical:<Kind>: <message>".
function toError(e) {
  const m = /^umbilical:(\w+): ([\s\S]*)$/.exec(e && e.message);
  return m ? new UmbilicalError(m[1], m[2]) : e;
}

function invalid(message) {
  return new UmbilicalError('InvalidInput', message);
}

function signalNumber(signal) {
  if (typeof signal === 'number' && Number.isInteger(signal) && signal > 0) return signal;
  if (typeof signal === 'string' && Object.hasOwn(SIGNALS, signal)) return SIGNALS[signal];
  throw invalid(`unknown signal ${JSON.stringify(signal)}`);
}

function oneOf(name, value, allowed) {
  if (value === undefined) return allowed[0];
  if (!allowed.includes(value)) {
    throw invalid(`${name}: ${JSON.stringify(value)} is not one of ${allowed.join(', ')}`);
  }
  return value;
}

// Checks the options and turns them into the native module's.
function nativeOptions(options) {
  const known = [
    'via', 'env', 'cwd', 'stderr', 'channel', 'shim', 'shimPath', 'shimSource', 'timeout', 'killSignal', 'askpass',
    'signal', 'connectTimeout', 'processGroup',
  ];
  for (const key of Object.keys(options)) {
    if (!known.includes(key)) throw invalid(`unknown option ${JSON.stringify(key)}`);
  }
  let via = options.via ?? [];
  if (typeof via === 'string') via = [via];
  if (!Array.isArray(via) || via.some((v) => typeof v !== 'string')) {
    throw invalid('via: a launcher spec ("sudo:nobody") or an array of them, outer first');
  }
  let env;
  if (options.env !== undefined) {
    if (options.env === null || typeof options.env !== 'object') throw invalid('env: an object of strings');
    env = {};
    for (const [k, v] of Object.entries(options.env)) {
      if (v !== undefined) env[k] = String(v);
    }
  }
  for (const key of ['timeout', 'connectTimeout']) {
    const v = options[key];
    if (v !== undefined && !(Number.isFinite(v) && v > 0 && v <= 0xffffffff)) {
      throw invalid(`${key}: a positive number of milliseconds`);
    }
  }
  if (options.askpass !== undefined && typeof options.askpass !== 'function') {
    throw invalid('askpass: an async function (prompt) => answer or null');
  }
  const shim = oneOf('shim', options.shim, ['auto', 'on', 'off']);
  return {
    via,
    env,
    cwd: options.cwd === undefined ? undefined : String(options.cwd),
    stderr: oneOf('stderr', options.stderr, ['inherit', 'pipe', 'ignore', 'merge']),
    channel: oneOf('channel', options.channel, ['socket', 'pipes']),
    shim,
    shimPath: options.shimPath ?? (existsSync(BUNDLED_SHIM) ? BUNDLED_SHIM : undefined),
    shimSource: options.shimSource ?? (existsSync(BUNDLED_SHIM) ? BUNDLED_SHIM : undefined),
    connectTimeoutMs: options.connectTimeout === undefined ? undefined : Math.ceil(options.connectTimeout),
    processGroup: Boolean(options.processGroup),
    // The tests' way to run the Windows I/O path (every read and write
    // through the native module) on Unix too.
    handOutFds: process.env.UMBILICAL_NODE_NATIVE_IO !== '1',
  };
}

// Every answer becomes a Promise of a string or null: the native side
// awaits it on Node's thread.
function askpassCallback(askpass) {
  return (prompt) =>
    Promise.resolve()
      .then(() => askpass({ ...prompt }))
      .then((answer) => (answer === null || answer === undefined ? null : String(answer)));
}

/**
 * A started program. `channel` is its stdin/stdout as one Duplex;
 * `exited` resolves with how it ended.
 */
class Child {
  #native = null;
  #started;
  #timer = null;
  #ended = false;
  #why = null; // 'timeout' | 'abort' once the wrapper kills it
  #abort = null;
  #onAbort = null;

  constructor(program, args, options) {
    const opts = nativeOptions(options);
    const killSignal = options.killSignal ?? 'SIGTERM';
    signalNumber(killSignal);
    const abort = options.signal;
    this.stderr = null;

    if (abort?.aborted) {
      this.#started = Promise.reject(abortError(abort, null));
    } else {
      this.#started = native
        .spawn(String(program), args.map(String), opts, options.askpass && askpassCallback(options.askpass))
        .then((n) => {
          this.#native = n;
          return n;
        }, (e) => {
          throw toError(e);
        });
    }
    // Start errors arrive through `spawned` and `exited`; unobserved, they
    // must not crash the process as an unhandled rejection.
    this.spawned = this.#started.then(() => undefined);
    this.spawned.catch(() => {});

    this.channel = this.#channel();
    if (opts.stderr === 'pipe') this.stderr = this.#stderr();

    this.exited = this.#started.then((n) => n.wait()).then(
      (e) => this.#finish(e),
      (e) => {
        this.#ended = true;
        this.#cleanup();
        throw toError(e);
      },
    );
    this.exited.catch(() => {});

    if (options.timeout !== undefined) {
      this.#timer = setTimeout(() => {
        this.#why = 'timeout';
        this.kill(killSignal).catch(() => {});
      }, options.timeout);
    }
    if (abort) {
      this.#abort = abort;
      this.#onAbort = () => {
        this.#why = 'abort';
        this.kill(killSignal).catch(() => {});
      };
      abort.addEventListener('abort', this.#onAbort, { once: true });
    }
  }

  /** The program's pid once started (through ssh or a container: as the shim reports it). */
  get pid() {
    return this.#native?.pid ?? undefined;
  }

  /** Where the shim came from and ran, once started through it. */
  get shimOrigin() {
    return this.#native?.shimOrigin ?? undefined;
  }

  /**
   * Sends `signal` (a name like 'SIGTERM' or a number; default 'SIGTERM').
   * 'SIGKILL' is the library's kill: relayed by the shim through launchers.
   * Resolves once it was sent; rejects if the program is gone or the
   * signal could not be sent.
   */
  kill(signal = 'SIGTERM') {
    let n;
    try {
      n = signalNumber(signal);
    } catch (e) {
      return Promise.reject(e);
    }
    return this.#started.then((c) => c.signal(n, signal === 'SIGKILL' || n === SIGNALS.SIGKILL)).catch((e) => {
      throw toError(e);
    });
  }

  #finish(e) {
    this.#ended = true;
    this.#cleanup();
    const exit = {
      code: e.code ?? null,
      signal: e.signal === undefined || e.signal === null ? null : (SIGNAL_NAMES[e.signal] ?? e.signal),
      detection: e.detection,
      statusLost: e.statusLost,
      description: e.description,
    };
    if (this.#why === 'timeout') {
      const err = new UmbilicalError('TimedOut', `the program ran past its timeout and was stopped (${e.description})`);
      err.exit = exit;
      throw err;
    }
    if (this.#why === 'abort') throw abortError(this.#abort, exit);
    return exit;
  }

  #cleanup() {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    if (this.#onAbort) this.#abort.removeEventListener('abort', this.#onAbort);
  }

  // The channel: on Unix the program's descriptors become two net.Sockets
  // on Node's own event loop (as child_process's pipes are), and this
  // Duplex forwards to them; elsewhere each read and write is a call into
  // the native module. Made at once, it waits for the start.
  #channel() {
    const started = this.#started;
    const child = this;
    let reader = null;
    let writer = null;
    const duplex = new Duplex({
      allowHalfOpen: true,
      read() {
        if (reader) return reader.resume();
        started.then((n) => (reader ? reader.resume() : n.read(CHUNK).then((buf) => this.push(buf)))).then(
          undefined,
          (e) => (child.#native ? this.destroy(toError(e)) : this.push(null)),
        );
      },
      write(chunk, _encoding, done) {
        // Nothing to write is no write: `end('')` to a program that never
        // reads must not fail with EPIPE.
        if (chunk.length === 0) return void done();
        if (writer) return void writer.write(chunk, done);
        started.then((n) => (writer ? new Promise((resolve, reject) => writer.write(chunk, (e) => (e ? reject(e) : resolve()))) : n.write(chunk))).then(
          () => done(),
          (e) => (child.#native ? done(toError(e)) : done()),
        );
      },
      writev(chunks, done) {
        const data = chunks.length === 1 ? chunks[0].chunk : Buffer.concat(chunks.map((c) => c.chunk));
        this._write(data, 'buffer', done);
      },
      final(done) {
        if (writer) return void writer.end(() => done());
        started.then((n) => (writer ? new Promise((resolve) => writer.end(resolve)) : n.shutdownWrite())).then(
          () => done(),
          (e) => (child.#native ? done(toError(e)) : done()),
        );
      },
      destroy(err, done) {
        started.then((n) => {
          reader?.destroy();
          writer?.destroy();
          n.closeRead();
          return n.shutdownWrite();
        }).catch(() => {});
        done(err);
      },
    });
    started.then((n) => {
      const fds = n.takeFds();
      if (!fds) return;
      reader = new Socket({ fd: fds[0], readable: true, writable: false });
      writer = new Socket({ fd: fds[1], readable: false, writable: true });
      // Errors reach the Duplex through the write callbacks; the writer's
      // own 'error' event must not go unhandled.
      writer.on('error', () => {});
      reader.pause();
      reader.on('data', (chunk) => {
        if (!duplex.push(chunk)) reader.pause();
      });
      reader.on('end', () => duplex.push(null));
      reader.on('error', (e) => duplex.destroy(e));
      if (duplex.readableFlowing || duplex.readableLength < duplex.readableHighWaterMark) reader.resume();
    }, () => {});
    return duplex;
  }

  #stderr() {
    const started = this.#started;
    return new Readable({
      read() {
        started.then((n) => n.readStderr(CHUNK)).then(
          (buf) => this.push(buf),
          () => this.push(null),
        );
      },
    });
  }
}

function abortError(signal, exit) {
  const err = new Error('The operation was aborted', { cause: signal?.reason });
  err.name = 'AbortError';
  err.code = 'ABORT_ERR';
  err.exit = exit;
  return err;
}

/**
 * Starts `program` with `args`. Returns the Child at once; a start that
 * fails rejects `child.spawned` and `child.exited` with an UmbilicalError.
 */
function spawn(program, args = [], options = {}) {
  if (!Array.isArray(args)) {
    options = args ?? {};
    args = [];
  }
  if (typeof program !== 'string' || program === '') throw invalid('program: a non-empty string');
  return new Child(program, args, options);
}

module.exports = { spawn, Child, UmbilicalError };
