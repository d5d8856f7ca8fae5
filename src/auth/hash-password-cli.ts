/**
 * `npm run hash-password [PASSWORD]`: prints the {@link hashPassword} string for the admin
 * password config. The password comes from argv[2] or, without one, from the first line of stdin
 * (trailing `\r\n` stripped; no echo suppression). Exits 1 with a message on stderr when the
 * password is empty or cannot be hashed. Prefer stdin: an argv password lands in shell history.
 */
import { hashPassword } from '../base/password.js';

function fail(message: string): never {
  process.stderr.write(`hash-password: ${message}\n`);
  process.exit(1);
}

/** Resolves with the first line of stdin (without its line ending), or everything when there is no newline. */
function readFirstLine(): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const done = (): void => {
      process.stdin.off('data', onData);
      process.stdin.off('end', done);
      process.stdin.off('error', reject);
      process.stdin.pause();
      const newline = text.indexOf('\n');
      resolve((newline === -1 ? text : text.slice(0, newline)).replace(/\r$/, ''));
    };
    const onData = (chunk: string): void => {
      text += chunk;
      if (text.includes('\n')) done();
    };
    process.stdin.setEncoding('utf8');
    process.stdin.on('data', onData);
    process.stdin.on('end', done);
    process.stdin.on('error', reject);
  });
}

async function main(): Promise<void> {
  let password = process.argv[2];
  if (password === undefined) {
    if (process.stdin.isTTY) process.stderr.write('password (will be echoed): ');
    password = await readFirstLine();
  }
  if (password === '') fail('empty password; pass it as the first argument or on stdin');
  let hash: string;
  try {
    hash = await hashPassword(password);
  } catch (err) {
    fail((err as Error).message);
  }
  process.stdout.write(`${hash}\n`);
}

main().catch((err: unknown) => fail(`unexpected error: ${err instanceof Error ? err.message : String(err)}`));
