/**
 * A small TOML reader, enough for uv.lock and pyproject.toml: tables, arrays
 * of tables, dotted keys, inline tables, arrays, basic/literal strings (one-
 * and multi-line), integers, floats, booleans; dates are kept as strings.
 * Errors say where (line:column) and what, so a broken uv.lock can be named
 * precisely.
 */

export type TomlValue = string | number | boolean | TomlValue[] | TomlTable;
export interface TomlTable {
  [key: string]: TomlValue;
}

export class TomlError extends Error {
  readonly line: number;
  readonly column: number;
  constructor(message: string, line: number, column: number) {
    super(`line ${line}, column ${column}: ${message}`);
    this.name = 'TomlError';
    this.line = line;
    this.column = column;
  }
}

const BARE_KEY = /[A-Za-z0-9_-]/;

/** Tables created by [header] or dotted keys, which may not be redefined. */
interface State {
  text: string;
  pos: number;
  defined: WeakSet<TomlTable>;
  /** arrays created by [[header]]: only these may be appended to */
  tableArrays: WeakSet<TomlValue[]>;
  /** tables written as inline tables, which are closed */
  inline: WeakSet<TomlTable>;
}

export function parseToml(text: string): TomlTable {
  const st: State = { text, pos: 0, defined: new WeakSet(), tableArrays: new WeakSet(), inline: new WeakSet() };
  const root: TomlTable = {};
  let current = root;
  if (text.charCodeAt(0) === 0xfeff) st.pos = 1;
  for (;;) {
    skipWsCommentsNewlines(st);
    if (st.pos >= text.length) break;
    const c = text[st.pos];
    if (c === '[') {
      const headerAt = st.pos;
      const isArray = text[st.pos + 1] === '[';
      st.pos += isArray ? 2 : 1;
      skipWs(st);
      const keys = parseKey(st);
      skipWs(st);
      if (isArray) expect(st, ']]');
      else expect(st, ']');
      endOfLine(st);
      current = isArray ? appendTableArray(st, root, keys, headerAt) : openTable(st, root, keys, headerAt);
    } else {
      const keys = parseKey(st);
      skipWs(st);
      expect(st, '=');
      skipWs(st);
      const value = parseValue(st);
      assignDotted(st, current, keys, value);
      endOfLine(st);
    }
  }
  return root;
}

function fail(st: State, message: string, at = st.pos): never {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < at && i < st.text.length; i++) {
    if (st.text[i] === '\n') {
      line++;
      lineStart = i + 1;
    }
  }
  throw new TomlError(message, line, at - lineStart + 1);
}

function describe(st: State): string {
  if (st.pos >= st.text.length) return 'end of file';
  const c = st.text[st.pos]!;
  if (c === '\n') return 'end of line';
  return JSON.stringify(c);
}

function expect(st: State, s: string): void {
  if (!st.text.startsWith(s, st.pos)) fail(st, `expected ${JSON.stringify(s)}, found ${describe(st)}`);
  st.pos += s.length;
}

function skipWs(st: State): void {
  while (st.pos < st.text.length && (st.text[st.pos] === ' ' || st.text[st.pos] === '\t')) st.pos++;
}

function skipComment(st: State): void {
  if (st.text[st.pos] === '#') {
    while (st.pos < st.text.length && st.text[st.pos] !== '\n') st.pos++;
  }
}

function skipWsCommentsNewlines(st: State): void {
  for (;;) {
    skipWs(st);
    skipComment(st);
    if (st.text[st.pos] === '\n') st.pos++;
    else if (st.text[st.pos] === '\r' && st.text[st.pos + 1] === '\n') st.pos += 2;
    else return;
  }
}

function endOfLine(st: State): void {
  skipWs(st);
  skipComment(st);
  if (st.pos >= st.text.length) return;
  if (st.text[st.pos] === '\n') {
    st.pos++;
    return;
  }
  if (st.text[st.pos] === '\r' && st.text[st.pos + 1] === '\n') {
    st.pos += 2;
    return;
  }
  fail(st, `expected the end of the line, found ${describe(st)}`);
}

function parseKey(st: State): string[] {
  const keys: string[] = [];
  for (;;) {
    skipWs(st);
    const c = st.text[st.pos];
    if (c === '"') keys.push(parseBasicString(st));
    else if (c === "'") keys.push(parseLiteralString(st));
    else {
      const start = st.pos;
      while (st.pos < st.text.length && BARE_KEY.test(st.text[st.pos]!)) st.pos++;
      if (st.pos === start) fail(st, `expected a key, found ${describe(st)}`);
      keys.push(st.text.slice(start, st.pos));
    }
    skipWs(st);
    if (st.text[st.pos] !== '.') return keys;
    st.pos++;
  }
}

function isTable(v: TomlValue | undefined): v is TomlTable {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Walk/create intermediate tables for [a.b.c] and dotted keys. */
function descend(st: State, table: TomlTable, key: string, at: number): TomlTable {
  const existing = table[key];
  if (existing === undefined) {
    const t: TomlTable = {};
    table[key] = t;
    return t;
  }
  if (Array.isArray(existing)) {
    if (!st.tableArrays.has(existing)) fail(st, `key ${JSON.stringify(key)} is an array, not a table`, at);
    const last = existing[existing.length - 1];
    if (!isTable(last)) fail(st, `key ${JSON.stringify(key)} is not a table`, at);
    return last;
  }
  if (!isTable(existing)) fail(st, `key ${JSON.stringify(key)} is already a value, not a table`, at);
  if (st.inline.has(existing)) fail(st, `inline table ${JSON.stringify(key)} cannot be extended`, at);
  return existing;
}

function openTable(st: State, root: TomlTable, keys: string[], at: number): TomlTable {
  let t = root;
  for (let i = 0; i < keys.length - 1; i++) t = descend(st, t, keys[i]!, at);
  const last = keys[keys.length - 1]!;
  const existing = t[last];
  if (existing === undefined) {
    const created: TomlTable = {};
    t[last] = created;
    st.defined.add(created);
    return created;
  }
  if (!isTable(existing) || st.inline.has(existing)) fail(st, `table [${keys.join('.')}] conflicts with an earlier value`, at);
  if (st.defined.has(existing)) fail(st, `table [${keys.join('.')}] is defined twice`, at);
  st.defined.add(existing);
  return existing;
}

function appendTableArray(st: State, root: TomlTable, keys: string[], at: number): TomlTable {
  let t = root;
  for (let i = 0; i < keys.length - 1; i++) t = descend(st, t, keys[i]!, at);
  const last = keys[keys.length - 1]!;
  let arr = t[last];
  if (arr === undefined) {
    arr = [];
    t[last] = arr;
    st.tableArrays.add(arr);
  } else if (!Array.isArray(arr) || !st.tableArrays.has(arr)) {
    fail(st, `[[${keys.join('.')}]] conflicts with an earlier value`, at);
  }
  const created: TomlTable = {};
  arr.push(created);
  st.defined.add(created);
  return created;
}

function assignDotted(st: State, table: TomlTable, keys: string[], value: TomlValue): void {
  const at = st.pos;
  let t = table;
  for (let i = 0; i < keys.length - 1; i++) t = descend(st, t, keys[i]!, at);
  const last = keys[keys.length - 1]!;
  if (Object.prototype.hasOwnProperty.call(t, last)) fail(st, `key ${JSON.stringify(keys.join('.'))} is defined twice`, at);
  t[last] = value;
}

function parseValue(st: State): TomlValue {
  const c = st.text[st.pos];
  if (c === '"') return st.text.startsWith('"""', st.pos) ? parseMultilineBasic(st) : parseBasicString(st);
  if (c === "'") return st.text.startsWith("'''", st.pos) ? parseMultilineLiteral(st) : parseLiteralString(st);
  if (c === '[') return parseArray(st);
  if (c === '{') return parseInlineTable(st);
  if (st.text.startsWith('true', st.pos) && !BARE_KEY.test(st.text[st.pos + 4] ?? ' ')) {
    st.pos += 4;
    return true;
  }
  if (st.text.startsWith('false', st.pos) && !BARE_KEY.test(st.text[st.pos + 5] ?? ' ')) {
    st.pos += 5;
    return false;
  }
  return parseScalar(st);
}

/** numbers, and dates/times kept as their text */
function parseScalar(st: State): TomlValue {
  const start = st.pos;
  while (st.pos < st.text.length && /[0-9A-Za-z_+\-.:]/.test(st.text[st.pos]!)) {
    st.pos++;
  }
  // a date-time may contain one space between date and time
  if (st.text[st.pos] === ' ' && /^\d{4}-\d{2}-\d{2}$/.test(st.text.slice(start, st.pos)) && /\d/.test(st.text[st.pos + 1] ?? '')) {
    st.pos++;
    while (st.pos < st.text.length && /[0-9A-Za-z_+\-.:]/.test(st.text[st.pos]!)) st.pos++;
  }
  const raw = st.text.slice(start, st.pos);
  if (raw === '') fail(st, `expected a value, found ${describe(st)}`, start);
  if (/^\d{4}-\d{2}-\d{2}/.test(raw) || /^\d{2}:\d{2}/.test(raw)) return raw;
  const clean = raw.replace(/_/g, '');
  if (/^[+-]?(0|[1-9]\d*)$/.test(clean)) return Number(clean);
  if (/^0x[0-9a-fA-F]+$/.test(clean) || /^0o[0-7]+$/.test(clean) || /^0b[01]+$/.test(clean)) return Number(clean);
  if (/^[+-]?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?$/.test(clean)) return Number(clean);
  if (/^[+-]?(inf|nan)$/.test(clean)) return clean.endsWith('inf') ? (clean.startsWith('-') ? -Infinity : Infinity) : NaN;
  return fail(st, `invalid value ${JSON.stringify(raw)}`, start);
}

function parseBasicString(st: State): string {
  const start = st.pos;
  st.pos++;
  let out = '';
  for (;;) {
    if (st.pos >= st.text.length || st.text[st.pos] === '\n') fail(st, 'unterminated string', start);
    const c = st.text[st.pos]!;
    if (c === '"') {
      st.pos++;
      return out;
    }
    if (c === '\\') out += parseEscape(st);
    else {
      out += c;
      st.pos++;
    }
  }
}

function parseEscape(st: State): string {
  const at = st.pos;
  const e = st.text[st.pos + 1];
  st.pos += 2;
  switch (e) {
    case 'b':
      return '\b';
    case 't':
      return '\t';
    case 'n':
      return '\n';
    case 'f':
      return '\f';
    case 'r':
      return '\r';
    case 'e':
      return '\x1b';
    case '"':
      return '"';
    case '\\':
      return '\\';
    case 'u':
    case 'U': {
      const len = e === 'u' ? 4 : 8;
      const hex = st.text.slice(st.pos, st.pos + len);
      if (!new RegExp(`^[0-9a-fA-F]{${len}}$`).test(hex)) fail(st, 'invalid unicode escape', at);
      st.pos += len;
      const cp = parseInt(hex, 16);
      if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) fail(st, 'invalid unicode code point', at);
      return String.fromCodePoint(cp);
    }
    default:
      return fail(st, `invalid escape \\${e ?? ''}`, at);
  }
}

function parseLiteralString(st: State): string {
  const start = st.pos;
  const end = st.text.indexOf("'", st.pos + 1);
  const nl = st.text.indexOf('\n', st.pos + 1);
  if (end < 0 || (nl >= 0 && nl < end)) fail(st, 'unterminated string', start);
  st.pos = end + 1;
  return st.text.slice(start + 1, end);
}

function parseMultilineBasic(st: State): string {
  const start = st.pos;
  st.pos += 3;
  if (st.text[st.pos] === '\n') st.pos++;
  else if (st.text.startsWith('\r\n', st.pos)) st.pos += 2;
  let out = '';
  for (;;) {
    if (st.pos >= st.text.length) fail(st, 'unterminated multi-line string', start);
    if (st.text.startsWith('"""', st.pos)) {
      // up to two quotes may sit right before the closing delimiter
      let extra = 0;
      while (st.text[st.pos + 3 + extra] === '"' && extra < 2) extra++;
      out += '"'.repeat(extra);
      st.pos += 3 + extra;
      return out;
    }
    const c = st.text[st.pos]!;
    if (c === '\\') {
      const rest = /^\\[ \t]*\r?\n[\s]*/.exec(st.text.slice(st.pos, st.pos + 4096));
      if (rest) {
        st.pos += rest[0].length;
        continue;
      }
      out += parseEscape(st);
    } else {
      out += c;
      st.pos++;
    }
  }
}

function parseMultilineLiteral(st: State): string {
  const start = st.pos;
  st.pos += 3;
  if (st.text[st.pos] === '\n') st.pos++;
  else if (st.text.startsWith('\r\n', st.pos)) st.pos += 2;
  const end = st.text.indexOf("'''", st.pos);
  if (end < 0) fail(st, 'unterminated multi-line string', start);
  let extra = 0;
  while (st.text[end + 3 + extra] === "'" && extra < 2) extra++;
  const out = st.text.slice(st.pos, end + extra);
  st.pos = end + 3 + extra;
  return out;
}

function parseArray(st: State): TomlValue[] {
  st.pos++;
  const out: TomlValue[] = [];
  for (;;) {
    skipWsCommentsNewlines(st);
    if (st.text[st.pos] === ']') {
      st.pos++;
      return out;
    }
    if (st.pos >= st.text.length) fail(st, 'unterminated array');
    out.push(parseValue(st));
    skipWsCommentsNewlines(st);
    if (st.text[st.pos] === ',') st.pos++;
    else if (st.text[st.pos] !== ']') fail(st, `expected "," or "]" in an array, found ${describe(st)}`);
  }
}

function parseInlineTable(st: State): TomlTable {
  st.pos++;
  const t: TomlTable = {};
  skipWs(st);
  if (st.text[st.pos] === '}') {
    st.pos++;
    st.inline.add(t);
    return t;
  }
  for (;;) {
    skipWs(st);
    const keys = parseKey(st);
    skipWs(st);
    expect(st, '=');
    skipWs(st);
    const value = parseValue(st);
    assignDotted(st, t, keys, value);
    skipWs(st);
    if (st.text[st.pos] === ',') {
      st.pos++;
      continue;
    }
    if (st.text[st.pos] === '}') {
      st.pos++;
      st.inline.add(t);
      return t;
    }
    fail(st, `expected "," or "}" in an inline table, found ${describe(st)}`);
  }
}
