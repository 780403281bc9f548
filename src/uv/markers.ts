/**
 * PEP 508 environment markers, as uv.lock writes them on dependency edges
 * (`python_full_version < '3.12'`, `sys_platform == 'win32' and …`),
 * evaluated for one interpreter. Version-valued variables compare as
 * PEP 440 versions, the rest as strings. A marker velo cannot evaluate
 * (an `extra`/`group` conflict marker, an unknown variable, a syntax it does
 * not know) throws MarkerUnsupported: the caller lets uv plan instead.
 */

/** The marker variables of one interpreter (PEP 508). */
export interface MarkerEnvironment {
  implementation_name: string;
  implementation_version: string;
  os_name: string;
  platform_machine: string;
  platform_python_implementation: string;
  platform_release: string;
  platform_system: string;
  platform_version: string;
  python_full_version: string;
  python_version: string;
  sys_platform: string;
}

export class MarkerUnsupported extends Error {}

const VERSION_VARS = new Set(['python_version', 'python_full_version', 'implementation_version']);
const STRING_VARS = new Set([
  'implementation_name',
  'os_name',
  'platform_machine',
  'platform_python_implementation',
  'platform_release',
  'platform_system',
  'platform_version',
  'sys_platform',
]);

type Token = { t: 'str'; v: string } | { t: 'var'; v: string } | { t: 'op'; v: string } | { t: '(' } | { t: ')' } | { t: 'and' } | { t: 'or' };

function tokenize(marker: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < marker.length) {
    const c = marker[i]!;
    if (c === ' ' || c === '\t') {
      i++;
    } else if (c === '(' || c === ')') {
      out.push({ t: c });
      i++;
    } else if (c === "'" || c === '"') {
      const end = marker.indexOf(c, i + 1);
      if (end < 0) throw new MarkerUnsupported(`unterminated string in marker ${JSON.stringify(marker)}`);
      out.push({ t: 'str', v: marker.slice(i + 1, end) });
      i = end + 1;
    } else {
      const op = /^(===|==|!=|<=|>=|~=|<|>)/.exec(marker.slice(i));
      if (op) {
        out.push({ t: 'op', v: op[1]! });
        i += op[1]!.length;
        continue;
      }
      const word = /^[A-Za-z_.][A-Za-z0-9_.]*/.exec(marker.slice(i));
      if (!word) throw new MarkerUnsupported(`unexpected ${JSON.stringify(c)} in marker ${JSON.stringify(marker)}`);
      const w = word[0];
      i += w.length;
      if (w === 'and' || w === 'or') out.push({ t: w });
      else if (w === 'in') out.push({ t: 'op', v: 'in' });
      else if (w === 'not') {
        const rest = /^\s+in\b/.exec(marker.slice(i));
        if (!rest) throw new MarkerUnsupported(`"not" without "in" in marker ${JSON.stringify(marker)}`);
        i += rest[0].length;
        out.push({ t: 'op', v: 'not in' });
      } else out.push({ t: 'var', v: w.replace(/^os\.name$/, 'os_name').replace(/^sys\.platform$/, 'sys_platform') });
    }
  }
  return out;
}

/** Evaluate `marker` for `env`. */
export function evaluateMarker(marker: string, env: MarkerEnvironment): boolean {
  const tokens = tokenize(marker);
  let at = 0;
  const peek = (): Token | undefined => tokens[at];
  const orExpr = (): boolean => {
    let v = andExpr();
    while (peek()?.t === 'or') {
      at++;
      const r = andExpr();
      v = v || r;
    }
    return v;
  };
  const andExpr = (): boolean => {
    let v = atom();
    while (peek()?.t === 'and') {
      at++;
      const r = atom();
      v = v && r;
    }
    return v;
  };
  const atom = (): boolean => {
    const t = tokens[at++];
    if (!t) throw new MarkerUnsupported(`marker ${JSON.stringify(marker)} ends early`);
    if (t.t === '(') {
      const v = orExpr();
      if (tokens[at++]?.t !== ')') throw new MarkerUnsupported(`unbalanced parentheses in marker ${JSON.stringify(marker)}`);
      return v;
    }
    const op = tokens[at++];
    const right = tokens[at++];
    if (!op || op.t !== 'op' || !right || (right.t !== 'str' && right.t !== 'var') || (t.t !== 'str' && t.t !== 'var')) {
      throw new MarkerUnsupported(`cannot read marker ${JSON.stringify(marker)}`);
    }
    return compare(t, op.v, right, env, marker);
  };
  const v = orExpr();
  if (at !== tokens.length) throw new MarkerUnsupported(`trailing input in marker ${JSON.stringify(marker)}`);
  return v;
}

function valueOf(t: { t: 'str' | 'var'; v: string }, env: MarkerEnvironment, marker: string): { value: string; version: boolean } {
  if (t.t === 'str') return { value: t.v, version: false };
  if (VERSION_VARS.has(t.v)) return { value: env[t.v as keyof MarkerEnvironment], version: true };
  if (STRING_VARS.has(t.v)) return { value: env[t.v as keyof MarkerEnvironment], version: false };
  // extra / group (uv's conflict markers) and anything else: uv decides
  throw new MarkerUnsupported(`marker variable ${t.v} in ${JSON.stringify(marker)}`);
}

function compare(l: { t: 'str' | 'var'; v: string }, op: string, r: { t: 'str' | 'var'; v: string }, env: MarkerEnvironment, marker: string): boolean {
  const a = valueOf(l, env, marker);
  const b = valueOf(r, env, marker);
  if (op === 'in' || op === 'not in') {
    const found = b.value.includes(a.value);
    return op === 'in' ? found : !found;
  }
  if (a.version || b.version) {
    const [variable, literal, flipped] = a.version ? [a.value, b.value, false] : [b.value, a.value, true];
    return versionMatches(variable, flipped ? flip(op) : op, literal);
  }
  switch (op) {
    case '==':
    case '===':
      return a.value === b.value;
    case '!=':
      return a.value !== b.value;
    default:
      throw new MarkerUnsupported(`string comparison ${op} in ${JSON.stringify(marker)}`);
  }
}

function flip(op: string): string {
  return ({ '<': '>', '>': '<', '<=': '>=', '>=': '<=' } as Record<string, string>)[op] ?? op;
}

interface Version {
  release: number[];
  /** [kind rank, number]: a=0, b=1, rc=2; final = [3, 0] */
  pre: [number, number];
  post: number;
  dev: number;
}

const VERSION = /^v?(\d+(?:\.\d+)*)(?:[-_.]?(a|b|c|rc|alpha|beta|pre|preview)[-_.]?(\d*))?(?:[-_.]?(?:post|rev|r)[-_.]?(\d*))?(?:[-_.]?dev[-_.]?(\d*))?(?:\+[a-z0-9.]+)?$/i;

export function parseVersion(text: string): Version {
  const m = VERSION.exec(text.trim());
  if (!m) throw new MarkerUnsupported(`not a version: ${JSON.stringify(text)}`);
  const preKind = m[2]?.toLowerCase();
  const rank = preKind === undefined ? 3 : preKind.startsWith('a') ? 0 : preKind.startsWith('b') ? 1 : 2;
  return {
    release: m[1]!.split('.').map(Number),
    pre: [rank, preKind === undefined ? 0 : Number(m[3] || 0)],
    post: m[4] === undefined ? -1 : Number(m[4] || 0),
    dev: m[5] === undefined ? Infinity : Number(m[5] || 0),
  };
}

export function compareVersions(x: Version, y: Version): number {
  const n = Math.max(x.release.length, y.release.length);
  for (let i = 0; i < n; i++) {
    const d = (x.release[i] ?? 0) - (y.release[i] ?? 0);
    if (d !== 0) return Math.sign(d);
  }
  // a dev release without a pre-release sorts before the pre-releases
  const preOf = (v: Version): [number, number] => (v.pre[0] === 3 && v.post < 0 && v.dev !== Infinity ? [-1, 0] : v.pre);
  const [px, py] = [preOf(x), preOf(y)];
  if (px[0] !== py[0]) return Math.sign(px[0] - py[0]);
  if (px[1] !== py[1]) return Math.sign(px[1] - py[1]);
  if (x.post !== y.post) return Math.sign(x.post - y.post);
  if (x.dev !== y.dev) return x.dev < y.dev ? -1 : 1;
  return 0;
}

/** `variable <op> literal` for a PEP 440 version specifier (wildcards on == and != included). */
export function versionMatches(variable: string, op: string, literal: string): boolean {
  const v = parseVersion(variable);
  if ((op === '==' || op === '!=') && literal.endsWith('.*')) {
    const prefix = parseVersion(literal.slice(0, -2)).release;
    const same = prefix.every((p, i) => (v.release[i] ?? 0) === p);
    return op === '==' ? same : !same;
  }
  if (op === '===') return variable === literal;
  const w = parseVersion(literal);
  const c = compareVersions(v, w);
  switch (op) {
    case '==':
      return c === 0;
    case '!=':
      return c !== 0;
    case '<':
      return c < 0;
    case '<=':
      return c <= 0;
    case '>':
      return c > 0;
    case '>=':
      return c >= 0;
    case '~=': {
      if (w.release.length < 2) throw new MarkerUnsupported(`~=${literal} needs two release segments`);
      const prefix = w.release.slice(0, -1);
      return c >= 0 && prefix.every((p, i) => (v.release[i] ?? 0) === p);
    }
    default:
      throw new MarkerUnsupported(`version operator ${op}`);
  }
}

/** Does `version` satisfy a comma-separated specifier set (`>=3.9, <4`)? */
export function satisfiesSpecifiers(version: string, specifiers: string): boolean {
  for (const part of specifiers.split(',')) {
    const s = part.trim();
    if (s === '') continue;
    const m = /^(===|==|!=|<=|>=|~=|<|>)\s*(.+)$/.exec(s);
    if (!m) throw new MarkerUnsupported(`cannot read specifier ${JSON.stringify(s)}`);
    if (!versionMatches(version, m[1]!, m[2]!.trim())) return false;
  }
  return true;
}
