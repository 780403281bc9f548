/**
 * The first line(s) of a console-script launcher, or of a wheel script whose
 * `#!python` placeholder the installer rewrote: they name one environment's
 * interpreter, so they are written per environment. Same rules as pip/uv on
 * POSIX: `#!<python>` unless the line would be longer than 127 bytes or the
 * path has a space, then a /bin/sh trampoline that execs the interpreter.
 */

function quoteForSh(s: string): string {
  return `'${s.replace(/'/g, `'"'"'`)}'`;
}

/** The shebang (without its trailing newline) for an environment's python. */
export function formatShebang(python: string): string {
  const lineLength = 2 + Buffer.byteLength(python) + 1;
  if (lineLength > 127 || python.includes(' ')) {
    return `#!/bin/sh\n'''exec' ${quoteForSh(python)} "$0" "$@"\n' '''`;
  }
  return `#!${python}`;
}

/**
 * If `content` starts with the shebang an installer wrote for `python`,
 * the rest of the file (the part every environment shares); else undefined.
 */
export function stripShebang(content: Buffer, python: string): Buffer | undefined {
  const prefix = Buffer.from(formatShebang(python) + '\n');
  if (content.length < prefix.length || !content.subarray(0, prefix.length).equals(prefix)) return undefined;
  return content.subarray(prefix.length);
}

export function withShebang(body: Buffer, python: string): Buffer {
  return Buffer.concat([Buffer.from(formatShebang(python) + '\n'), body]);
}
