/**
 * requirements.txt, read for what `velo uv pip` needs to decide whether it
 * can install through the store: each requirement's name, whether it pins
 * one exact version, and the `--hash` values that pin its artifacts. Index
 * options inside the file are kept (uv reads them when it resolves); every
 * form velo does not install itself — editable installs, local paths, URLs
 * and VCS references, constraint and override files — is reported as
 * unsupported, with the line, and `velo uv pip` hands the command to uv.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fsError } from '../errors.js';
import { normalizeName } from './installedDistribution.js';

export interface Requirement {
  /** normalized (PEP 503) */
  name: string;
  /** the line as written, without its options */
  spec: string;
  /** `name==X` (or `===X`) with no wildcard: exactly one version */
  pinned: boolean;
  /** "sha256:<hex>" values from --hash */
  hashes: string[];
}

export interface Requirements {
  requirements: Requirement[];
  /** index options given in the files (uv reads them from the files itself) */
  indexOptions: string[];
  /** every file read (nested -r included), with its bytes */
  files: { path: string; text: string }[];
}

/** Options a requirements file may carry that only tell uv where to look. */
const INDEX_OPTIONS = /^(-i|--index-url|--extra-index-url|--no-index|--prefer-binary|--only-binary|--no-binary|--pre|--trusted-host)\b/;

export class UnsupportedRequirements extends Error {}

/** Physical lines joined at trailing backslashes, comments removed. */
function logicalLines(text: string): string[] {
  const out: string[] = [];
  let cur = '';
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.replace(/(^|\s)#.*$/, '');
    if (line.endsWith('\\')) {
      cur += line.slice(0, -1) + ' ';
      continue;
    }
    cur += line;
    if (cur.trim() !== '') out.push(cur.trim());
    cur = '';
  }
  if (cur.trim() !== '') out.push(cur.trim());
  return out;
}

const NAME = /^([A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?)\s*(\[[^\]]*\])?\s*(.*)$/;

function parseRequirement(line: string, where: string): Requirement {
  const hashes: string[] = [];
  const spec = line
    .replace(/--hash[=\s]\s*([a-z0-9]+):([0-9a-fA-F]+)/g, (_m, algo: string, hex: string) => {
      hashes.push(`${algo}:${hex.toLowerCase()}`);
      return '';
    })
    .trim();
  if (/(^|\s)--?[a-z]/.test(spec)) throw new UnsupportedRequirements(`${where}: options on a requirement line (${line})`);
  if (spec.includes('://') || spec.includes('@') || spec.startsWith('.') || spec.startsWith('/') || /\.(whl|zip|tar\.gz|tgz)\b/.test(spec)) {
    throw new UnsupportedRequirements(`${where}: a URL, path or VCS reference (${spec})`);
  }
  const m = NAME.exec(spec);
  if (!m) throw new UnsupportedRequirements(`${where}: a requirement velo cannot read (${spec})`);
  const rest = (m[4] ?? '').split(';', 1)[0]!.trim();
  return { name: normalizeName(m[1]!), spec, pinned: /^===?\s*[^\s,*<>=!~]+$/.test(rest), hashes };
}

/** Read requirement files (and the files they include with -r). Throws UnsupportedRequirements for forms velo leaves to uv. */
export function readRequirements(paths: string[], cwd: string): Requirements {
  const out: Requirements = { requirements: [], indexOptions: [], files: [] };
  const seen = new Set<string>();
  const visit = (path: string): void => {
    const abs = resolve(cwd, path);
    if (seen.has(abs)) return;
    seen.add(abs);
    if (!/\.(txt|in)$/.test(abs) && !abs.endsWith('requirements')) {
      throw new UnsupportedRequirements(`${path}: not a requirements.txt file (pyproject.toml, setup.py and pylock.toml sources are uv's)`);
    }
    let text: string;
    try {
      text = readFileSync(abs, 'utf8');
    } catch (err) {
      throw fsError(err, `cannot read ${path}`);
    }
    out.files.push({ path: abs, text });
    logicalLines(text).forEach((line, i) => {
      const where = `${path}, requirement ${i + 1}`;
      const nested = /^(-r|--requirement)[=\s]\s*(.+)$/.exec(line);
      if (nested) return visit(resolve(dirname(abs), nested[2]!.trim()));
      if (INDEX_OPTIONS.test(line)) {
        out.indexOptions.push(line);
        return;
      }
      if (line.startsWith('-')) throw new UnsupportedRequirements(`${where}: ${line.split(/\s/, 1)[0]} (editable installs, constraints and other options are uv's)`);
      out.requirements.push(parseRequirement(line, where));
    });
  };
  for (const p of paths) visit(p);
  return out;
}
