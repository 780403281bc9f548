/** The oldest Node velo runs on (package.json "engines"): checked by velo.ts and by the bin's fast path. */
const MIN_NODE: [number, number] = [22, 22];

export function nodeTooOld(): boolean {
  const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
  return major < MIN_NODE[0] || (major === MIN_NODE[0] && minor < MIN_NODE[1]);
}
