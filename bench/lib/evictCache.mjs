// Drop files from the page cache without root-wide drop_caches: every file
// named, and every regular file under every directory named (symlinks found
// there not followed), gets posix_fadvise(DONTNEED). Returns how many files were evicted.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const EVICT = `
import os, sys
n = 0
for top in sys.argv[1:]:
    # a file named on the command line is followed if it is a symlink; links met in a walk are not
    paths = [(top, 0)] if os.path.isfile(top) else [(os.path.join(d, f), os.O_NOFOLLOW) for d, _, fs in os.walk(top) for f in fs]
    for p, flags in paths:
        try:
            fd = os.open(p, os.O_RDONLY | flags)
        except OSError:
            continue
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            n += 1
        finally:
            os.close(fd)
print(n)
`;

export function evictFromPageCache(paths, python = 'python3') {
  const present = paths.filter((p) => existsSync(p));
  if (present.length === 0) return 0;
  return Number(execFileSync(python, ['-c', EVICT, ...present], { encoding: 'utf8' }).trim());
}
