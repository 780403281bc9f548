// A small, independent writer of the tree format (docs/FORMAT.md) for the
// native addon's tests and benchmarks. The tests check it byte-for-byte
// against src/store/treeFormat.ts serializeTree().
//
// entries: [{ path, kind: 'dir'|'file'|'symlink', exec?, private?, size?, digest?(hex), target?, mtimeNs?(bigint) }]
// The root is path ''. Parent directories must be listed.

const HEADER = 32;
const ENTRY = 64;
const KIND = { dir: 1, file: 2, symlink: 3 };

function sortedChildren(byParent, path) {
  const kids = byParent.get(path) ?? [];
  return kids.sort((a, b) => Buffer.compare(a.nameBuf, b.nameBuf));
}

export function writeTree(entries, { mtimes = false } = {}) {
  const root = entries.find((e) => e.path === '') ?? { path: '', kind: 'dir' };
  const byParent = new Map();
  for (const e of entries) {
    if (e.path === '') continue;
    const slash = e.path.lastIndexOf('/');
    const parent = slash < 0 ? '' : e.path.slice(0, slash);
    const item = { e, nameBuf: Buffer.from(e.path.slice(slash + 1)) };
    if (!byParent.has(parent)) byParent.set(parent, []);
    byParent.get(parent).push(item);
  }
  const order = [{ e: root, nameBuf: Buffer.alloc(0), parent: 0 }];
  const children = [];
  for (let i = 0; i < order.length; i++) {
    const node = order[i];
    if (node.e.kind !== 'dir') continue;
    const kids = sortedChildren(byParent, node.e.path);
    children[i] = { first: kids.length ? order.length : 0, count: kids.length };
    for (const k of kids) order.push({ ...k, parent: i });
  }
  const head = Buffer.alloc(HEADER + ENTRY * order.length);
  const strings = [];
  let strLen = 0;
  let logical = 0n;
  order.forEach((node, i) => {
    const { e } = node;
    const off = HEADER + ENTRY * i;
    head.writeUInt8(KIND[e.kind], off);
    head.writeUInt8(e.kind === 'file' ? (e.exec ? 1 : 0) | (e.private ? 2 : 0) : 0, off + 1);
    head.writeUInt32LE(node.parent, off + 4);
    head.writeUInt32LE(strLen, off + 8);
    head.writeUInt32LE(node.nameBuf.length, off + 12);
    strings.push(node.nameBuf);
    strLen += node.nameBuf.length;
    if (mtimes && e.mtimeNs !== undefined) head.writeBigInt64LE(e.mtimeNs, off + 24);
    if (e.kind === 'file') {
      head.writeBigUInt64LE(BigInt(e.size), off + 16);
      head.write(e.digest, off + 32, 32, 'hex');
      logical += BigInt(e.size);
    } else if (e.kind === 'dir') {
      head.writeUInt32LE(children[i].first, off + 32);
      head.writeUInt32LE(children[i].count, off + 36);
    } else {
      const t = Buffer.from(e.target);
      head.writeBigUInt64LE(BigInt(t.length), off + 16);
      head.writeUInt32LE(strLen, off + 32);
      head.writeUInt32LE(t.length, off + 36);
      strings.push(t);
      strLen += t.length;
    }
  });
  head.write('VELOTREE', 0, 'latin1');
  head.writeUInt16LE(1, 8);
  head.writeUInt16LE(1, 10);
  head.writeUInt32LE(mtimes ? 1 : 0, 12);
  head.writeUInt32LE(order.length, 16);
  head.writeUInt32LE(strLen, 20);
  head.writeBigUInt64LE(logical, 24);
  return Buffer.concat([head, ...strings]);
}
