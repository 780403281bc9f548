/**
 * RECORD files (the installed-files list of a distribution, PEP 376/627):
 * CSV rows of path, "sha256=<urlsafe base64, no padding>", size. Rows are
 * kept with their original text so a RECORD can be rewritten with only the
 * rows that must change (a launcher's hash) touched.
 */
import { createHash } from 'node:crypto';

export interface RecordRow {
  /** path as written: relative to site-packages, '/'-separated, may start with ../ */
  path: string;
  /** "sha256=…" or '' */
  hash: string;
  /** size as written, '' when absent */
  size: string;
  /** the row's original text, without the line ending */
  raw: string;
}

export function recordHash(data: Buffer): string {
  return 'sha256=' + createHash('sha256').update(data).digest('base64url');
}

/** Split CSV text into rows of fields, keeping each row's raw text. */
function splitCsv(text: string): { fields: string[]; raw: string }[] {
  const rows: { fields: string[]; raw: string }[] = [];
  let i = 0;
  while (i < text.length) {
    const start = i;
    const fields: string[] = [];
    let field = '';
    let quoted = false;
    for (;;) {
      if (i >= text.length) {
        fields.push(field);
        break;
      }
      const c = text[i]!;
      if (quoted) {
        if (c === '"') {
          if (text[i + 1] === '"') {
            field += '"';
            i += 2;
          } else {
            quoted = false;
            i++;
          }
        } else {
          field += c;
          i++;
        }
        continue;
      }
      if (c === '"' && field === '') {
        quoted = true;
        i++;
      } else if (c === ',') {
        fields.push(field);
        field = '';
        i++;
      } else if (c === '\n' || c === '\r') {
        fields.push(field);
        break;
      } else {
        field += c;
        i++;
      }
    }
    let end = i;
    if (text[i] === '\r') i++;
    if (text[i] === '\n') i++;
    const raw = text.slice(start, end);
    if (raw.trim() !== '') rows.push({ fields, raw });
    end = i;
  }
  return rows;
}

export function parseRecord(text: string): RecordRow[] {
  return splitCsv(text).map(({ fields, raw }) => ({
    path: fields[0] ?? '',
    hash: fields[1] ?? '',
    size: fields[2] ?? '',
    raw,
  }));
}

function csvField(s: string): string {
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function formatRecordRow(path: string, hash: string, size: string): string {
  return [csvField(path), csvField(hash), csvField(size)].join(',');
}

export function serializeRecord(rows: RecordRow[]): string {
  return rows.map((r) => r.raw + '\n').join('');
}

/** A copy of rows where the given paths get a new hash and size (the rest keep their text). */
export function withUpdatedRows(rows: RecordRow[], updates: Map<string, Buffer>): RecordRow[] {
  return rows.map((r) => {
    const data = updates.get(r.path);
    if (!data) return r;
    const hash = recordHash(data);
    const size = String(data.length);
    return { path: r.path, hash, size, raw: formatRecordRow(r.path, hash, size) };
  });
}
