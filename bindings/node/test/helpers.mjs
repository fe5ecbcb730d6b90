// Shared by the tests: collecting a stream, and a bound on any wait.
import { randomBytes } from 'node:crypto';

export { randomBytes };

/** Everything a readable gives, as one Buffer. */
export async function collect(readable) {
  const parts = [];
  for await (const part of readable) parts.push(part);
  return Buffer.concat(parts);
}

/** `promise`, or a rejection naming `what` after `ms`: a hang fails. */
export function within(ms, what, promise) {
  let timer;
  const limit = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, limit]).finally(() => clearTimeout(timer));
}

/** Feeds `input` with a half-close and reads the output to its end. */
export async function roundTrip(child, input) {
  child.channel.end(input);
  return collect(child.channel);
}
