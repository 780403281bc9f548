/**
 * What an environment's interpreter is, as far as the bytes of an installed
 * distribution depend on it: implementation, minor version, ABI, platform,
 * libc, bytecode magic and cache tag, and where site-packages lives. Asked of
 * the interpreter itself (one short python run).
 */
import { createHash } from 'node:crypto';
import { readFileSync, realpathSync, statSync } from 'node:fs';
import { relative } from 'node:path';
import { VeloError, fsError } from '../errors.js';
import { getKey, setKey } from '../store/keys.js';
import type { Store } from '../store/store.js';
import { putTree, readTree } from '../store/trees.js';
import { writeBufferToStore } from '../store/writeBufferToStore.js';
import type { MarkerEnvironment } from './markers.js';
import { runProcess, toolFailed } from './runUvProcess.js';

export interface Interpreter {
  implementation: string;
  /** "3.11" */
  version: string;
  fullVersion: string;
  cacheTag: string;
  soabi: string;
  abiflags: string;
  platform: string;
  libc: string;
  bits: number;
  gil: boolean;
  magic: string;
  /** the interpreter the environment is built on (sys._base_executable or equivalent) */
  baseExecutable: string;
  /** site-packages relative to the environment root, '/'-separated */
  sitePackages: string;
  /** PEP 508 marker values (planning from uv.lock evaluates its markers with them) */
  markers?: MarkerEnvironment;
}

const PROBE = `
import importlib.util, json, os, platform, sys, sysconfig
def libc():
    try:
        return os.confstr("CS_GNU_LIBC_VERSION") or ""
    except (AttributeError, ValueError, OSError):
        return ""
gil = getattr(sys, "_is_gil_enabled", None)
print(json.dumps({
    "implementation": sys.implementation.name,
    "version": "%d.%d" % sys.version_info[:2],
    "fullVersion": platform.python_version(),
    "cacheTag": sys.implementation.cache_tag or "",
    "soabi": sysconfig.get_config_var("SOABI") or "",
    "abiflags": getattr(sys, "abiflags", ""),
    "platform": sysconfig.get_platform(),
    "libc": libc(),
    "bits": 64 if sys.maxsize > 2**32 else 32,
    "gil": True if gil is None else bool(gil()),
    "magic": importlib.util.MAGIC_NUMBER.hex(),
    "baseExecutable": getattr(sys, "_base_executable", sys.executable),
    "prefix": sys.prefix,
    "purelib": sysconfig.get_path("purelib"),
    "platlib": sysconfig.get_path("platlib"),
    "markers": {
        "implementation_name": sys.implementation.name,
        "implementation_version": "%d.%d.%d" % sys.implementation.version[:3] + ("" if sys.implementation.version.releaselevel == "final" else sys.implementation.version.releaselevel[0] + str(sys.implementation.version.serial)),
        "os_name": os.name,
        "platform_machine": platform.machine(),
        "platform_python_implementation": platform.python_implementation(),
        "platform_release": platform.release(),
        "platform_system": platform.system(),
        "platform_version": platform.version(),
        "python_full_version": platform.python_version(),
        "python_version": ".".join(platform.python_version_tuple()[:2]),
        "sys_platform": sys.platform,
    },
}))
`;

export async function probeInterpreter(python: string, env: NodeJS.ProcessEnv, cwd: string): Promise<Interpreter> {
  const args = ['-I', '-B', '-c', PROBE];
  const r = await runProcess(python, args, { cwd, env });
  if (r.code !== 0) throw toolFailed('cannot inspect the environment\'s python', python, ['-I', '-c', '<probe>'], r);
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(r.stdout) as Record<string, unknown>;
  } catch {
    throw new VeloError('TOOL_FAILED', `${python} printed something unexpected when asked what it is: ${r.stdout.slice(0, 200)}`);
  }
  const prefix = String(raw.prefix);
  const purelib = String(raw.purelib);
  const sitePackages = relative(prefix, purelib).split('\\').join('/');
  if (sitePackages.startsWith('..') || sitePackages === '') {
    throw new VeloError('TOOL_FAILED', `${python}: site-packages (${purelib}) is not inside the environment (${prefix})`);
  }
  return {
    implementation: String(raw.implementation),
    version: String(raw.version),
    fullVersion: String(raw.fullVersion),
    cacheTag: String(raw.cacheTag),
    soabi: String(raw.soabi),
    abiflags: String(raw.abiflags),
    platform: String(raw.platform),
    libc: String(raw.libc),
    bits: Number(raw.bits),
    gil: Boolean(raw.gil),
    magic: String(raw.magic),
    baseExecutable: String(raw.baseExecutable),
    sitePackages,
    markers: raw.markers as MarkerEnvironment,
  };
}

/** The part of the interpreter that decides an installed distribution's bytes. */
export function interpreterIdentity(i: Interpreter): Record<string, string | number | boolean> {
  return {
    implementation: i.implementation,
    version: i.version,
    cacheTag: i.cacheTag,
    soabi: i.soabi,
    abiflags: i.abiflags,
    platform: i.platform,
    libc: i.libc,
    bits: i.bits,
    gil: i.gil,
    magic: i.magic,
    sitePackages: i.sitePackages,
  };
}

/**
 * The interpreter behind a venv's python, probed once per interpreter binary
 * (its real path and stat) and remembered in the store's index under a key
 * the project then holds (so gc keeps it while the project lives).
 */
function interpreterKeyOf(python: string): { key: string; realPath: string } {
  let ident: string;
  let real: string;
  try {
    real = realpathSync(python);
    const st = statSync(real, { bigint: true });
    ident = `${real}\0${st.size}\0${st.mtimeNs}\0${st.ino}`;
  } catch (err) {
    throw fsError(err, `cannot find the interpreter behind ${python}`);
  }
  return { key: `uv-python:${createHash('sha256').update(ident).digest('hex').slice(0, 40)}`, realPath: real };
}

/**
 * The interpreter behind `python` (a venv's python or the interpreter it
 * links to: both resolve to the same binary), as probed before through a
 * venv; undefined when it never was, or when the record predates markers.
 */
export function recordedInterpreter(store: Store, python: string): { interpreter: Interpreter; key: string; realPath: string } | undefined {
  const { key, realPath } = interpreterKeyOf(python);
  const tree = getKey(store, key);
  if (!tree) return undefined;
  try {
    const entry = readTree(store, tree).entries.find((e) => e.path === 'interpreter.json');
    if (!entry) return undefined;
    const interpreter = JSON.parse(readFileSync(store.objectPath(entry.digest, false), 'utf8')) as Interpreter;
    return interpreter.markers ? { interpreter, key, realPath } : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The interpreter behind a venv's python, probed once per interpreter binary
 * (its real path and stat) and remembered in the store's index under a key
 * the project then holds (so gc keeps it while the project lives).
 */
export async function interpreterFor(
  store: Store,
  venvPython: string,
  env: NodeJS.ProcessEnv,
  cwd: string,
): Promise<{ interpreter: Interpreter; key: string; realPath: string }> {
  const recorded = recordedInterpreter(store, venvPython);
  if (recorded) return recorded;
  const { key, realPath } = interpreterKeyOf(venvPython);
  const probed = await probeInterpreter(venvPython, env, cwd);
  const added = writeBufferToStore(store, Buffer.from(JSON.stringify(probed)), false);
  setKey(store, key, putTree(store, [{ path: 'interpreter.json', kind: 'file', size: added.size, digest: added.digest }]), { kind: 'uv-python' });
  return { interpreter: probed, key, realPath };
}
