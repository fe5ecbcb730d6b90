// Types of the umbilical package (index.js). The API is documented in
// README.md beside this file.

import type { Duplex, Readable } from 'node:stream';

/** A launcher's question, as `askpass` receives it. */
export interface Prompt {
  /** The launcher that asks: 'sudo', 'ssh', 'doas', 'pkexec', 'su', ... */
  launcher: string;
  /** Which launcher of a chain asks, counted from the caller's side (0: the first). */
  hop: number;
  /** The question exactly as the launcher wrote it. */
  text: string;
  /** Whether the answer is secret (a password), as opposed to a yes/no question. */
  secret: boolean;
  /** How many times this launch was asked this question, this one included. */
  attempt: number;
}

export type SignalName = NodeJS.Signals;

export interface SpawnOptions {
  /** A launcher spec ('sudo', 'sudo:nobody', 'ssh:ops@db1:2222', 'docker:app@web', 'runas', ...) or a chain, outer first. */
  via?: string | string[];
  /** The program's whole environment (as child_process). */
  env?: Record<string, string | undefined>;
  /** The program's working directory. */
  cwd?: string;
  /** Where the program's stderr goes; 'pipe' makes `child.stderr` a Readable. Default 'inherit'. */
  stderr?: 'inherit' | 'pipe' | 'ignore' | 'merge';
  /** 'socket' (default; a socketpair per direction) or 'pipes'. */
  channel?: 'socket' | 'pipes';
  /** Whether to start the program through the shim. Default 'auto'. */
  shim?: 'auto' | 'on' | 'off';
  /** The shim where the launcher runs it. Default: the package's umbilical-shim. */
  shimPath?: string;
  /** A shim binary on this host to copy where none is. Default: the package's umbilical-shim. */
  shimSource?: string;
  /** Milliseconds; then `killSignal` is sent and `exited` rejects with code 'TimedOut'. */
  timeout?: number;
  /** The signal for `timeout` and `signal`. Default 'SIGTERM'. */
  killSignal?: SignalName | number;
  /** Aborting sends `killSignal`; `exited` rejects with an AbortError. */
  signal?: AbortSignal;
  /** Answers a launcher's question; null (or a throw) declines. */
  askpass?: (prompt: Prompt) => string | null | undefined | Promise<string | null | undefined>;
  /** Milliseconds the shim may take to connect and report the start. Default 60000. */
  connectTimeout?: number;
  /** The program leads a process group of its own; signals reach its children too. */
  processGroup?: boolean;
}

/** How the program ended. */
export interface Exit {
  /** The exit code; null when a signal ended it or the status is unknown. */
  code: number | null;
  /** The signal that ended it, by name; null when it exited. */
  signal: SignalName | null;
  /** How the end was seen. */
  detection: 'process' | 'shim' | 'shim-lost' | 'lifeline' | 'channel';
  /** Whether the status should have been known but was lost. */
  statusLost: boolean;
  /** The library's words for it, e.g. "exit code 3 (seen by shim)". */
  description: string;
}

export type ErrorCode =
  | 'NotFound'
  | 'NotExecutable'
  | 'InvalidInput'
  | 'LauncherNotFound'
  | 'LauncherRefused'
  | 'ShimFailed'
  | 'Protocol'
  | 'TimedOut'
  | 'Spawn'
  | 'Io';

/** An error from umbilical; `code` says which. */
export class UmbilicalError extends Error {
  name: 'UmbilicalError';
  code: ErrorCode;
  /** With code 'TimedOut' from the `timeout` option: how the program ended. */
  exit?: Exit;
}

/** A started program. */
export class Child {
  private constructor();
  /** Its stdin and stdout as one stream; `end()` is the half-close. */
  readonly channel: Duplex;
  /** Its stderr with `stderr: 'pipe'`, else null. */
  readonly stderr: Readable | null;
  /** Resolves once the program runs; rejects if it could not start. */
  readonly spawned: Promise<void>;
  /** Resolves with how the program ended; rejects with an UmbilicalError (or an AbortError). */
  readonly exited: Promise<Exit>;
  /** The program's pid once started, where known. */
  readonly pid: number | undefined;
  /** Where the shim came from and ran, when one was used. */
  readonly shimOrigin: string | undefined;
  /** Sends a signal (default 'SIGTERM'); resolves once sent, rejects once the program has ended. */
  kill(signal?: SignalName | number): Promise<void>;
}

/** Starts `program` with `args`. */
export function spawn(program: string, args?: readonly string[], options?: SpawnOptions): Child;
export function spawn(program: string, options?: SpawnOptions): Child;
