/**
 * Where things live in a remote (docs/REMOTE.md, "Layout"):
 *
 *   <prefix>keys/<sha256(name)>.json   package key → its tree (digest and the
 *                                      serialized tree itself, so one GET gives
 *                                      a reader everything but the objects),
 *                                      plus the index of where each of the
 *                                      tree's objects lives (written LAST: a
 *                                      key is a promise that everything it
 *                                      names is already there)
 *   <prefix>packs/<digest>             many small objects in one PUT, named by
 *                                      the BLAKE3 digest of the pack's bytes;
 *                                      read one object by a ranged GET
 *   <prefix>objects/<digest>           a large object on its own
 *   <prefix>bundles/<sha256(names)>.json
 *                                      the key records of one lockfile's
 *                                      packages together (named by its sorted
 *                                      key names): a machine lacking them all
 *                                      reads one object, not one per package;
 *                                      written after the keys, checked like them
 *
 * An object is stored as it is, or zstd-compressed when that saves at least
 * a tenth, or — when small — zstd-compressed together with its package's
 * other small objects in one frame (its index entry says which, and where in
 * the frame it starts); either way its digest is that of the uncompressed
 * bytes, checked after decompression. Framing small files saves the
 * per-object cost of a zstd context, on both sides: half the CPU of
 * compressing 100 MB of npm files one by one (373 vs 823 ms), the same ratio.
 */
import { constants as zlibConstants, zstdCompressSync, zstdDecompressSync } from 'node:zlib';
import { createHash } from 'node:crypto';
import { VeloError } from '../errors.js';
import { isDigest } from '../store/hash.js';

export const REMOTE_FORMAT = 1;
/** objects up to this size go into packs; larger ones are stored on their own */
export const PACK_OBJECT_MAX = 1 << 20;
/** a pack is sealed and uploaded once it holds this many bytes */
export const PACK_TARGET = 16 << 20;
/** objects larger than this are not published (S3's single PUT takes 5 GB; velo keeps memory bounded) */
export const OBJECT_PUBLISH_MAX = 512 << 20;

export function keyObjectName(prefix: string, name: string): string {
  return `${prefix}keys/${createHash('sha256').update(name).digest('hex')}.json`;
}
export function packObjectName(prefix: string, pack: string): string {
  return `${prefix}packs/${pack}`;
}
export function looseObjectName(prefix: string, digest: string): string {
  return `${prefix}objects/${digest}`;
}
/** the bundle of a set of keys: the same set (in any order, repeats ignored) names the same bundle */
export function bundleObjectName(prefix: string, names: Iterable<string>): string {
  return `${prefix}bundles/${createHash('sha256').update([...new Set(names)].sort().join('\n')).digest('hex')}.json`;
}

/** How an object's bytes are stored: as they are (0), zstd-compressed (1), or in a zstd frame with other small objects (2). */
export type ObjectEncoding = 0 | 1 | 2;

/** Where an object lives: in a pack at [offset, offset+length), or on its own (pack ''), and how it is encoded. */
export interface ObjectLocation {
  pack: string;
  offset: number;
  /** stored bytes (compressed when enc is 1; the whole frame when enc is 2) */
  length: number;
  enc: ObjectEncoding;
  /** enc 2: where the object starts in the frame's uncompressed bytes */
  at?: number;
}

/** objects up to this size are compressed in frames with their package's other small objects */
export const FRAME_OBJECT_MAX = 16 << 10;
/** a frame is closed once it holds this many uncompressed bytes */
export const FRAME_TARGET = 64 << 10;
/** no frame unpacks to more than this (a larger one from the remote is refused) */
export const FRAME_RAW_MAX = FRAME_TARGET + FRAME_OBJECT_MAX;

/**
 * How objects are compressed: the zstd level. Level 1 by measurement
 * (bench/remote-encode-bench.mjs, docs/BENCHMARKS.md): the fast (negative)
 * levels save little CPU here and cost far more bytes.
 */
export interface EncodePolicy {
  level: number;
}

export const DEFAULT_ENCODE_POLICY: EncodePolicy = { level: 1 };

/**
 * zstd at `level`, its output in one chunk of about the input's size (zstd's bound, up to 1 MiB) rather
 * than in 16 KiB chunks concatenated after: 5–10% less CPU on npm files
 */
const zstdParams = (level: number, size: number): { params: Record<number, number>; chunkSize: number } => ({
  params: { [zlibConstants.ZSTD_c_compressionLevel]: level },
  chunkSize: Math.max(64, Math.min(size + (size >> 7) + 512, 1 << 20)),
});

/** The bytes to store for an object: zstd (level 1: ~130 MB/s here, 3.3x on npm packages) when that saves a tenth. */
export function encodeObject(data: Buffer, policy: EncodePolicy = DEFAULT_ENCODE_POLICY): { bytes: Buffer; enc: ObjectEncoding } {
  if (data.length < 64) return { bytes: data, enc: 0 };
  const z = zstdCompressSync(data, zstdParams(policy.level, data.length));
  return z.length <= data.length * 0.9 ? { bytes: z, enc: 1 } : { bytes: data, enc: 0 };
}

/** What goes into a pack: stored bytes and the objects in them (several for a frame, at their offsets in it). */
export interface EncodedBlob {
  bytes: Buffer;
  enc: ObjectEncoding;
  /** [index into the encoded list, where it starts in the frame (0 unless enc is 2)] */
  members: [index: number, at: number][];
}

/**
 * Encode a package's objects for upload: each small one into a shared zstd
 * frame (closed at FRAME_TARGET), each larger one on its own. A frame that
 * does not save a tenth is sent as its objects, as they are.
 */
export class BlobEncoder {
  readonly blobs: EncodedBlob[] = [];
  readonly #policy: EncodePolicy;
  #frame: { index: number; data: Buffer }[] = [];
  #frameBytes = 0;

  constructor(policy: EncodePolicy = DEFAULT_ENCODE_POLICY) {
    this.#policy = policy;
  }

  add(index: number, data: Buffer): void {
    if (data.length > FRAME_OBJECT_MAX) {
      this.#alone(index, data);
      return;
    }
    this.#frame.push({ index, data });
    this.#frameBytes += data.length;
    if (this.#frameBytes >= FRAME_TARGET) this.close();
  }

  #alone(index: number, data: Buffer): void {
    const { bytes, enc } = encodeObject(data, this.#policy);
    this.blobs.push({ bytes, enc, members: [[index, 0]] });
  }

  /** seal the open frame (call once more at the end) */
  close(): void {
    const frame = this.#frame;
    this.#frame = [];
    this.#frameBytes = 0;
    if (frame.length === 1) this.#alone(frame[0]!.index, frame[0]!.data);
    if (frame.length <= 1) return;
    const raw = Buffer.concat(frame.map((f) => f.data));
    const z = zstdCompressSync(raw, zstdParams(this.#policy.level, raw.length));
    if (z.length > raw.length * 0.9) {
      for (const f of frame) this.blobs.push({ bytes: f.data, enc: 0, members: [[f.index, 0]] });
      return;
    }
    let at = 0;
    const members: [number, number][] = [];
    for (const f of frame) {
      members.push([f.index, at]);
      at += f.data.length;
    }
    this.blobs.push({ bytes: z, enc: 2, members });
  }
}

/**
 * Objects encoded where their bytes were just hashed (an ingest worker, so a
 * publish neither reads them back nor hashes them again); each blob's members
 * index `digests`.
 */
export interface EncodedObjects {
  digests: string[];
  blobs: EncodedBlob[];
}

/**
 * Encodes objects as an ingest computes their digests, from exactly the bytes
 * hashed (each digest once, empty objects left out): small ones into the
 * package's frames, larger ones alone, while the bytes are still in cache.
 */
export class HashedObjectEncoder {
  readonly #encoder = new BlobEncoder();
  readonly #digests: string[] = [];
  readonly #seen = new Set<string>();

  add(digest: string, data: Buffer): void {
    if (data.length === 0 || this.#seen.has(digest)) return;
    this.#seen.add(digest);
    this.#encoder.add(this.#digests.push(digest) - 1, data);
  }

  finish(): EncodedObjects {
    this.#encoder.close();
    const blobs = this.#encoder.blobs;
    movableBlobs(blobs);
    return { digests: this.#digests, blobs };
  }
}

/**
 * Copy the blobs' bytes into one buffer of their own, each blob a view of
 * it, and return that buffer: to be moved to another thread (postMessage's
 * transfer list) rather than copied. A blob is otherwise often a view of a
 * larger buffer (a zstd output chunk, Node's pool for small Buffers), which
 * a structured copy sends whole, and copies twice (serialized, then
 * allocated again on the other side): a 100-byte view of a 16 KiB Buffer
 * arrived as a 64 KiB ArrayBuffer.
 */
export function movableBlobs(blobs: EncodedBlob[]): ArrayBuffer | undefined {
  let total = 0;
  for (const b of blobs) total += b.bytes.length;
  if (total === 0) return undefined;
  const only = blobs.length === 1 ? blobs[0]!.bytes : undefined;
  // one blob that is its buffer already (a large object's zstd output): moved as it is
  if (only && only.byteOffset === 0 && only.buffer.byteLength === total && only.buffer instanceof ArrayBuffer) return only.buffer;
  const all = Buffer.allocUnsafeSlow(total);
  let at = 0;
  for (const b of blobs) {
    const n = b.bytes.length;
    b.bytes.copy(all, at);
    b.bytes = all.subarray(at, at + n);
    at += n;
  }
  return all.buffer as ArrayBuffer;
}

/** The buffer movableBlobs() put these blobs' bytes in, when they are all views of one (to go in a transfer list). */
export function blobsBuffer(blobs: readonly EncodedBlob[]): ArrayBuffer | undefined {
  const first = blobs[0]?.bytes.buffer;
  if (!(first instanceof ArrayBuffer) || first.byteLength === 0) return undefined;
  return blobs.every((b) => b.bytes.buffer === first) ? first : undefined;
}

/** Blobs that crossed a thread (a Buffer arrives as a plain Uint8Array) as Buffers again. */
export function reviveBlobs(blobs: EncodedBlob[]): EncodedBlob[] {
  return blobs.map((b) => {
    const bytes: Uint8Array = b.bytes;
    return { ...b, bytes: Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength) };
  });
}

/** The object's bytes back, or undefined when they cannot be (never more than `size` bytes are produced). */
export function decodeObject(stored: Buffer, enc: 0 | 1, size: number): Buffer | undefined {
  if (enc === 0) return stored;
  try {
    // one output chunk of the known size: no growing chunk list and concat (-30% CPU on npm files)
    return zstdDecompressSync(stored, { maxOutputLength: Math.max(1, size), chunkSize: Math.max(64, size + 1) });
  } catch {
    return undefined;
  }
}

/** A frame's uncompressed bytes, or undefined when they cannot be (never more than FRAME_RAW_MAX). */
export function decodeFrame(stored: Buffer): Buffer | undefined {
  try {
    return zstdDecompressSync(stored, { maxOutputLength: FRAME_RAW_MAX, chunkSize: FRAME_RAW_MAX + 1 });
  } catch {
    return undefined;
  }
}

/** The JSON body of keys/<sha256(name)>.json. */
export interface RemoteKey {
  v: number;
  name: string;
  kind: string;
  tree: string;
  /** the serialized tree (docs/FORMAT.md), base64; BLAKE3 of its bytes is `tree` */
  treeData: string;
  files: number;
  bytes: number;
  /** the packs the objects are in */
  packs: string[];
  /** [digest, index into packs or -1 for a loose object, offset, stored length, encoding, and for a frame (2) where the object starts in it] */
  objects: ([string, number, number, number, ObjectEncoding] | [string, number, number, number, 2, number])[];
}

export function encodeRemoteKey(
  k: { name: string; kind: string; tree: string; treeData: Buffer; files: number; bytes: number },
  locations: Map<string, ObjectLocation>,
): Buffer {
  const packs: string[] = [];
  const packIndex = new Map<string, number>();
  const objects: RemoteKey['objects'] = [];
  for (const [digest, loc] of [...locations].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
    let i = -1;
    if (loc.pack !== '') {
      i = packIndex.get(loc.pack) ?? -1;
      if (i < 0) {
        i = packs.push(loc.pack) - 1;
        packIndex.set(loc.pack, i);
      }
    }
    objects.push(loc.enc === 2 ? [digest, i, loc.offset, loc.length, 2, loc.at ?? 0] : [digest, i, loc.offset, loc.length, loc.enc]);
  }
  const body: RemoteKey = { v: REMOTE_FORMAT, name: k.name, kind: k.kind, tree: k.tree, treeData: k.treeData.toString('base64'), files: k.files, bytes: k.bytes, packs, objects };
  return Buffer.from(JSON.stringify(body));
}

const nonNegInt = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;

/** Parse a key body from the (untrusted) remote; throws BAD_INPUT when it is not one. */
export function decodeRemoteKey(data: Buffer, expectedName: string): DecodedKey {
  let raw: unknown;
  try {
    raw = JSON.parse(data.toString('utf8'));
  } catch {
    throw new VeloError('BAD_INPUT', `remote key for ${expectedName} is not JSON`);
  }
  return checkRemoteKey(raw, expectedName);
}

export interface DecodedKey {
  key: RemoteKey;
  locations: Map<string, ObjectLocation>;
}

/** A bundle's body: key bodies (already JSON) joined, without parsing them again. */
export function encodeBundle(keyBodies: Buffer[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`{"v":${REMOTE_FORMAT},"keys":[`)];
  keyBodies.forEach((b, i) => parts.push(i === 0 ? b : Buffer.concat([Buffer.from(','), b])));
  parts.push(Buffer.from(']}'));
  return Buffer.concat(parts);
}

/**
 * The records a bundle from the (untrusted) remote holds for the wanted
 * names, each checked as a key is; throws BAD_INPUT when it is not a bundle
 * or a record for a wanted name is not a key.
 */
export function decodeBundle(data: Buffer, wanted: ReadonlySet<string>): Map<string, DecodedKey> {
  let raw: { v?: unknown; keys?: unknown };
  try {
    raw = JSON.parse(data.toString('utf8')) as typeof raw;
  } catch {
    throw new VeloError('BAD_INPUT', 'remote bundle is not JSON');
  }
  if (!raw || typeof raw !== 'object' || raw.v !== REMOTE_FORMAT || !Array.isArray(raw.keys)) throw new VeloError('BAD_INPUT', 'remote bundle: not a bundle');
  const out = new Map<string, DecodedKey>();
  for (const k of raw.keys as unknown[]) {
    const name = (k as { name?: unknown } | null)?.name;
    if (typeof name === 'string' && wanted.has(name) && !out.has(name)) out.set(name, checkRemoteKey(k, name));
  }
  return out;
}

/** Check a parsed key body field by field; throws BAD_INPUT when it is not a key for expectedName. */
function checkRemoteKey(raw: unknown, expectedName: string): DecodedKey {
  const k = raw as Partial<RemoteKey>;
  const bad = (why: string): never => {
    throw new VeloError('BAD_INPUT', `remote key for ${expectedName}: ${why}`);
  };
  if (!k || typeof k !== 'object' || k.v !== REMOTE_FORMAT) bad(`unknown format ${JSON.stringify(k?.v)}`);
  if (k.name !== expectedName) bad(`names ${JSON.stringify(k.name)}`);
  if (typeof k.tree !== 'string' || !isDigest(k.tree)) bad('no tree digest');
  if (typeof k.treeData !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(k.treeData)) bad('no tree');
  if (typeof k.kind !== 'string' || !nonNegInt(k.files) || !nonNegInt(k.bytes)) bad('bad kind, files or bytes');
  if (!Array.isArray(k.packs) || !k.packs.every((p) => typeof p === 'string' && isDigest(p))) bad('bad pack list');
  if (!Array.isArray(k.objects)) bad('no object index');
  const locations = new Map<string, ObjectLocation>();
  for (const o of k.objects!) {
    if (!Array.isArray(o) || o.length !== (o[4] === 2 ? 6 : 5)) bad('bad object entry');
    const [digest, i, offset, length, enc, at] = o as unknown[];
    if (
      typeof digest !== 'string' ||
      !isDigest(digest) ||
      typeof i !== 'number' ||
      !Number.isInteger(i) ||
      i < -1 ||
      i >= k.packs!.length ||
      !nonNegInt(offset) ||
      !nonNegInt(length) ||
      (enc !== 0 && enc !== 1 && enc !== 2) ||
      (enc === 2 && (i === -1 || !nonNegInt(at) || at >= FRAME_RAW_MAX))
    ) {
      bad('bad object entry');
    }
    const pack = i === -1 ? '' : k.packs![i as number]!;
    locations.set(digest as string, enc === 2 ? { pack, offset: offset as number, length: length as number, enc, at: at as number } : { pack, offset: offset as number, length: length as number, enc: enc as 0 | 1 });
  }
  return { key: k as RemoteKey, locations };
}
