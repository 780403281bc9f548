/**
 * Cargo's own dep-info files: the binary files cargo keeps in
 * target/<profile>/.fingerprint/<unit>/dep-* (translated from rustc's `.d`
 * files). Each lists the inputs of one unit: paths relative to the package
 * root (type 0) or to the build root, which may also be absolute (type 1).
 * Registry and git packages never list package-relative paths, so an entry
 * of type 0 marks a unit of a path package.
 *
 * Layout (cargo ≥ 1.83): u32 1, u8 0xff (a marker older cargoes stop at),
 * u8 version 1, u32 file count, files [u8 type, u32 len, path bytes, u8 has
 * checksum, (u64 size, u32 len, checksum)], u32 env count, env pairs. All
 * integers little-endian. The older layout (no marker) is read too.
 */

export type DepInfoPathKind = 'package' | 'build';

export interface DepInfoFile {
  kind: DepInfoPathKind;
  path: string;
}

class Reader {
  off = 0;
  constructor(readonly buf: Buffer) {}
  u8(): number | undefined {
    if (this.off + 1 > this.buf.length) return undefined;
    return this.buf.readUInt8(this.off++);
  }
  u32(): number | undefined {
    if (this.off + 4 > this.buf.length) return undefined;
    const v = this.buf.readUInt32LE(this.off);
    this.off += 4;
    return v;
  }
  skip(n: number): boolean {
    if (this.off + n > this.buf.length) return false;
    this.off += n;
    return true;
  }
  bytes(): string | undefined {
    const n = this.u32();
    if (n === undefined || this.off + n > this.buf.length) return undefined;
    const s = this.buf.toString('utf8', this.off, this.off + n);
    this.off += n;
    return s;
  }
}

/** The files listed in an encoded dep-info file; undefined when it is not one we can read. */
export function parseEncodedDepInfo(buf: Buffer): DepInfoFile[] | undefined {
  const r = new Reader(buf);
  const first = r.u32();
  if (first === undefined) return undefined;
  let count: number | undefined;
  let withChecksums = false;
  if (first === 1 && buf.length > 5 && buf.readUInt8(4) === 0xff) {
    r.skip(1);
    const version = r.u8();
    if (version !== 1) return undefined;
    count = r.u32();
    withChecksums = true;
  } else {
    count = first; // the layout before the marker: no checksums
  }
  if (count === undefined) return undefined;
  const files: DepInfoFile[] = [];
  for (let i = 0; i < count; i++) {
    const type = r.u8();
    const path = r.bytes();
    if (type === undefined || path === undefined || (type !== 0 && type !== 1)) return undefined;
    if (withChecksums) {
      const has = r.u8();
      if (has === undefined) return undefined;
      if (has !== 0) {
        if (!r.skip(8)) return undefined;
        if (r.bytes() === undefined) return undefined;
      }
    }
    files.push({ kind: type === 0 ? 'package' : 'build', path });
  }
  return files;
}
