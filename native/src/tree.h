/* tree.h — reader for velo's binary tree format (docs/FORMAT.md, version 1).
 *
 * vtree_open() checks every offset, length and index once, so that the
 * accessors below can be used without further bounds checks. A corrupt tree
 * yields an error message, never a crash. */
#ifndef VELO_TREE_H
#define VELO_TREE_H

#include <stddef.h>
#include <stdint.h>

#define VTREE_KIND_DIR 1
#define VTREE_KIND_FILE 2
#define VTREE_KIND_SYMLINK 3

#define VTREE_FLAG_MTIMES 1u    /* header flag: entries carry mtimes */
#define VTREE_ENTRY_EXEC 1u     /* entry flag: executable file */
#define VTREE_ENTRY_PRIVATE 2u  /* entry flag: always copy, never hardlink (something writes into it) */
#define VTREE_HEADER_SIZE 32u
#define VTREE_ENTRY_SIZE 64u
#define VTREE_DIGEST_SIZE 32u
#define VTREE_NAME_MAX 255u

/* A validated, read-only view of a serialized tree. Does not own `data`. */
typedef struct vtree {
    const uint8_t *data;
    size_t len;
    uint32_t flags;
    uint32_t count;
    uint32_t strtab_len;
    uint64_t logical_size;
    const uint8_t *entries;
    const uint8_t *strtab;
} vtree;

/* Validates `data` and fills `t`. Returns 0, or -1 with a message in err. */
int vtree_open(vtree *t, const void *data, size_t len, char *err, size_t errlen);

static inline const uint8_t *vtree_entry(const vtree *t, uint32_t i) {
    return t->entries + (size_t)i * VTREE_ENTRY_SIZE;
}

static inline uint32_t vtree_rd32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t vtree_rd64(const uint8_t *p) {
    return (uint64_t)vtree_rd32(p) | (uint64_t)vtree_rd32(p + 4) << 32;
}

static inline uint8_t vtree_kind(const vtree *t, uint32_t i) { return vtree_entry(t, i)[0]; }
static inline int vtree_is_exec(const vtree *t, uint32_t i) { return vtree_entry(t, i)[1] & VTREE_ENTRY_EXEC; }
static inline int vtree_is_private(const vtree *t, uint32_t i) { return (vtree_entry(t, i)[1] & VTREE_ENTRY_PRIVATE) != 0; }
static inline uint32_t vtree_parent(const vtree *t, uint32_t i) { return vtree_rd32(vtree_entry(t, i) + 4); }
static inline uint32_t vtree_name_len(const vtree *t, uint32_t i) { return vtree_rd32(vtree_entry(t, i) + 12); }
static inline const char *vtree_name(const vtree *t, uint32_t i) {
    return (const char *)t->strtab + vtree_rd32(vtree_entry(t, i) + 8);
}
static inline uint64_t vtree_size(const vtree *t, uint32_t i) { return vtree_rd64(vtree_entry(t, i) + 16); }
static inline int64_t vtree_mtime_ns(const vtree *t, uint32_t i) { return (int64_t)vtree_rd64(vtree_entry(t, i) + 24); }
static inline const uint8_t *vtree_digest(const vtree *t, uint32_t i) { return vtree_entry(t, i) + 32; }
static inline uint32_t vtree_first_child(const vtree *t, uint32_t i) { return vtree_rd32(vtree_entry(t, i) + 32); }
static inline uint32_t vtree_child_count(const vtree *t, uint32_t i) { return vtree_rd32(vtree_entry(t, i) + 36); }
static inline const char *vtree_target(const vtree *t, uint32_t i) {
    return (const char *)t->strtab + vtree_rd32(vtree_entry(t, i) + 32);
}
static inline uint32_t vtree_target_len(const vtree *t, uint32_t i) { return vtree_rd32(vtree_entry(t, i) + 36); }
static inline int vtree_has_mtimes(const vtree *t) { return (t->flags & VTREE_FLAG_MTIMES) != 0; }

/* Binary search for `name` among the children of directory `dir`.
 * Returns the entry index, or UINT32_MAX when absent. */
uint32_t vtree_lookup(const vtree *t, uint32_t dir, const char *name, size_t name_len);

/* Writes the path of entry i relative to the root ("" for the root) into
 * buf. Returns its length, or -1 when it does not fit. */
int vtree_path(const vtree *t, uint32_t i, char *buf, size_t buflen);

/* "ab/cdef…" (+ "x" when exec) for file entry i; buf needs 67 bytes. */
void vtree_object_name(const vtree *t, uint32_t i, char buf[67]);

#endif
