/**
 * Bytecode, compiled once per interpreter and stored with the distribution.
 * The .pyc files are hash-based and checked (PEP 552, CHECKED_HASH): the
 * interpreter compares the source's hash, not its mtime, so a pyc can never
 * be used for source it was not compiled from — whatever mtimes the link
 * farm gives the files, and even if a source file is edited in place.
 */
import { posix } from 'node:path';
import { runProcess, toolFailed } from './runUvProcess.js';

export interface CompileJob {
  /** absolute path of the .py file to compile */
  source: string;
  /** absolute path the .pyc is written to */
  output: string;
  /** the name recorded in the code object (relative; the importer fixes it up) */
  displayName: string;
}

const COMPILER = `
import json, py_compile, sys, warnings
warnings.simplefilter("ignore")
done = []
for source, output, display in json.load(sys.stdin):
    try:
        py_compile.compile(source, cfile=output, dfile=display, doraise=True,
                           invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH)
        done.append(output)
    except Exception:
        pass  # like pip and uv: a file that does not compile (python 2 code) is left as source
json.dump(done, sys.stdout)
`;

/** Where the interpreter looks for the bytecode of `rel` (a .py path, '/'-separated). */
export function pycPathFor(rel: string, cacheTag: string): string {
  const dir = posix.dirname(rel);
  const stem = posix.basename(rel, '.py');
  const file = `${stem}.${cacheTag}.pyc`;
  return dir === '.' ? `__pycache__/${file}` : `${dir}/__pycache__/${file}`;
}

/**
 * Sources velo leaves uncompiled: a distribution's own test suite (a `tests`
 * or `test` directory anywhere under site-packages). Programs do not import
 * it; it is 40% of the bytecode of a data-science environment (57 of 139 MB
 * for bench/uv-pandas: pandas, numpy, scipy…), which the store would keep per
 * interpreter. Running it still works: python compiles on demand, as it does
 * in a plain uv environment.
 */
export function inTestSuite(relInSitePackages: string): boolean {
  const dirs = relInSitePackages.split('/');
  dirs.pop();
  return dirs.some((d) => d === 'tests' || d === 'test');
}

/** Compile in `parallel` python processes; returns the outputs that were written. */
export async function compileBytecode(python: string, jobs: CompileJob[], env: NodeJS.ProcessEnv, cwd: string, parallel = 2): Promise<Set<string>> {
  const done = new Set<string>();
  if (jobs.length === 0) return done;
  const chunks = Math.max(1, Math.min(parallel, Math.ceil(jobs.length / 200)));
  const size = Math.ceil(jobs.length / chunks);
  const runs: Promise<void>[] = [];
  for (let c = 0; c < chunks; c++) {
    const slice = jobs.slice(c * size, (c + 1) * size).map((j) => [j.source, j.output, j.displayName]);
    runs.push(
      (async () => {
        const args = ['-I', '-c', COMPILER];
        const r = await runProcess(python, args, { cwd, env, input: JSON.stringify(slice) });
        if (r.code !== 0) throw toolFailed('compiling bytecode failed', python, ['-I', '-c', '<compiler>'], r);
        for (const out of JSON.parse(r.stdout) as string[]) done.add(out);
      })(),
    );
  }
  await Promise.all(runs);
  return done;
}
