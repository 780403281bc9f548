/* tree.c — validation and lookups for the binary tree format (docs/FORMAT.md). */
#include "tree.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int fail(char *err, size_t errlen, const char *fmt, ...) {
    va_list ap;
    int n = snprintf(err, errlen, "corrupt tree: ");
    if (n < 0 || (size_t)n >= errlen) return -1;
    va_start(ap, fmt);
    vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
    va_end(ap);
    return -1;
}

static int str_in_table(const vtree *t, uint32_t off, uint32_t len) {
    return (uint64_t)off + len <= t->strtab_len;
}

static int name_is_valid(const char *name, uint32_t len) {
    if (len == 0 || len > VTREE_NAME_MAX) return 0;
    if (len == 1 && name[0] == '.') return 0;
    if (len == 2 && name[0] == '.' && name[1] == '.') return 0;
    return memchr(name, '/', len) == NULL && memchr(name, '\0', len) == NULL;
}

static int compare_names(const vtree *t, uint32_t a, uint32_t b) {
    uint32_t la = vtree_name_len(t, a), lb = vtree_name_len(t, b);
    int c = memcmp(vtree_name(t, a), vtree_name(t, b), la < lb ? la : lb);
    if (c != 0) return c;
    return la < lb ? -1 : la > lb ? 1 : 0;
}

static int check_header(vtree *t, const uint8_t *p, size_t len, char *err, size_t errlen) {
    if (len < VTREE_HEADER_SIZE) return fail(err, errlen, "%zu bytes is shorter than the header", len);
    if (memcmp(p, "VELOTREE", 8) != 0) return fail(err, errlen, "bad magic");
    uint16_t version = (uint16_t)(p[8] | p[9] << 8);
    uint16_t algo = (uint16_t)(p[10] | p[11] << 8);
    if (version != 1) return fail(err, errlen, "unknown version %u", version);
    if (algo != 1) return fail(err, errlen, "unknown digest algorithm %u", algo);
    t->flags = vtree_rd32(p + 12);
    t->count = vtree_rd32(p + 16);
    t->strtab_len = vtree_rd32(p + 20);
    t->logical_size = vtree_rd64(p + 24);
    if (t->flags & ~VTREE_FLAG_MTIMES) return fail(err, errlen, "unknown header flags 0x%x", t->flags);
    if (t->count == 0) return fail(err, errlen, "no root entry");
    uint64_t want = VTREE_HEADER_SIZE + (uint64_t)t->count * VTREE_ENTRY_SIZE + t->strtab_len;
    if (want != len) return fail(err, errlen, "length %zu, header says %llu", len, (unsigned long long)want);
    t->data = p;
    t->len = len;
    t->entries = p + VTREE_HEADER_SIZE;
    t->strtab = t->entries + (size_t)t->count * VTREE_ENTRY_SIZE;
    return 0;
}

static int check_dir(const vtree *t, uint32_t i, char *err, size_t errlen) {
    const uint8_t *e = vtree_entry(t, i);
    uint32_t first = vtree_first_child(t, i), n = vtree_child_count(t, i);
    if (vtree_size(t, i) != 0) return fail(err, errlen, "directory entry %u has a size", i);
    for (int k = 40; k < 64; k++)
        if (e[k] != 0) return fail(err, errlen, "directory entry %u has non-zero padding", i);
    if (n == 0) return 0;
    if (first <= i || (uint64_t)first + n > t->count)
        return fail(err, errlen, "directory entry %u has children out of range", i);
    for (uint32_t c = first; c < first + n; c++) {
        if (vtree_parent(t, c) != i) return fail(err, errlen, "entry %u is listed under %u but names another parent", c, i);
        if (c > first && compare_names(t, c - 1, c) >= 0)
            return fail(err, errlen, "children of entry %u are not sorted or not unique", i);
    }
    return 0;
}

/* Checks that need nothing but the entry itself: kind, flags, string bounds. */
static int check_local(const vtree *t, uint32_t i, uint64_t *file_bytes, char *err, size_t errlen) {
    const uint8_t *e = vtree_entry(t, i);
    uint8_t kind = e[0];
    if (kind < VTREE_KIND_DIR || kind > VTREE_KIND_SYMLINK) return fail(err, errlen, "entry %u has unknown kind %u", i, kind);
    if (e[1] & ~(VTREE_ENTRY_EXEC | VTREE_ENTRY_PRIVATE) || (e[1] && kind != VTREE_KIND_FILE)) return fail(err, errlen, "entry %u has bad flags", i);
    if (e[2] != 0 || e[3] != 0) return fail(err, errlen, "entry %u has non-zero reserved bytes", i);
    if (!str_in_table(t, vtree_rd32(e + 8), vtree_name_len(t, i))) return fail(err, errlen, "entry %u name is out of range", i);
    if (i > 0 && !name_is_valid(vtree_name(t, i), vtree_name_len(t, i))) return fail(err, errlen, "entry %u has an invalid name", i);
    if (!vtree_has_mtimes(t) && vtree_mtime_ns(t, i) != 0) return fail(err, errlen, "entry %u has an mtime in a tree without mtimes", i);
    if (kind == VTREE_KIND_SYMLINK) {
        uint32_t tl = vtree_target_len(t, i);
        if (!str_in_table(t, vtree_rd32(e + 32), tl) || tl == 0 || vtree_size(t, i) != tl)
            return fail(err, errlen, "symlink entry %u has a bad target", i);
        if (memchr(vtree_target(t, i), '\0', tl)) return fail(err, errlen, "symlink entry %u target contains NUL", i);
        for (int k = 40; k < 64; k++)
            if (e[k] != 0) return fail(err, errlen, "symlink entry %u has non-zero padding", i);
    }
    if (kind == VTREE_KIND_FILE) *file_bytes += vtree_size(t, i);
    return 0;
}

/* Checks between entries: parents, child ranges, order. Needs check_local on all. */
static int check_links(const vtree *t, uint32_t i, char *err, size_t errlen) {
    uint8_t kind = vtree_kind(t, i);
    uint32_t parent = vtree_parent(t, i);
    if (i == 0) {
        if (kind != VTREE_KIND_DIR || parent != 0 || vtree_name_len(t, 0) != 0) return fail(err, errlen, "entry 0 is not a root directory");
    } else {
        if (parent >= i || vtree_kind(t, parent) != VTREE_KIND_DIR) return fail(err, errlen, "entry %u has a bad parent", i);
        uint32_t pf = vtree_first_child(t, parent), pn = vtree_child_count(t, parent);
        if (i < pf || (uint64_t)i >= (uint64_t)pf + pn) return fail(err, errlen, "entry %u is not in its parent's child range", i);
    }
    return kind == VTREE_KIND_DIR ? check_dir(t, i, err, errlen) : 0;
}

int vtree_open(vtree *t, const void *data, size_t len, char *err, size_t errlen) {
    memset(t, 0, sizeof *t);
    if (check_header(t, data, len, err, errlen) != 0) return -1;
    uint64_t file_bytes = 0;
    for (uint32_t i = 0; i < t->count; i++)
        if (check_local(t, i, &file_bytes, err, errlen) != 0) return -1;
    for (uint32_t i = 0; i < t->count; i++)
        if (check_links(t, i, err, errlen) != 0) return -1;
    if (file_bytes != t->logical_size) return fail(err, errlen, "logical size %llu, entries sum to %llu",
                                                   (unsigned long long)t->logical_size, (unsigned long long)file_bytes);
    return 0;
}

uint32_t vtree_lookup(const vtree *t, uint32_t dir, const char *name, size_t name_len) {
    uint32_t lo = vtree_first_child(t, dir), hi = lo + vtree_child_count(t, dir);
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        uint32_t ml = vtree_name_len(t, mid);
        int c = memcmp(vtree_name(t, mid), name, ml < name_len ? ml : name_len);
        if (c == 0) c = ml < name_len ? -1 : ml > name_len ? 1 : 0;
        if (c == 0) return mid;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return UINT32_MAX;
}

int vtree_path(const vtree *t, uint32_t i, char *buf, size_t buflen) {
    size_t total = 0;
    for (uint32_t j = i; j != 0; j = vtree_parent(t, j)) total += vtree_name_len(t, j) + (j != i);
    if (total + 1 > buflen) return -1;
    buf[total] = '\0';
    size_t end = total;
    for (uint32_t j = i; j != 0; j = vtree_parent(t, j)) {
        uint32_t n = vtree_name_len(t, j);
        if (j != i) buf[--end] = '/';
        end -= n;
        memcpy(buf + end, vtree_name(t, j), n);
    }
    return (int)total;
}

void vtree_object_name(const vtree *t, uint32_t i, char buf[67]) {
    static const char hex[] = "0123456789abcdef";
    const uint8_t *d = vtree_digest(t, i);
    char *o = buf;
    for (int k = 0; k < (int)VTREE_DIGEST_SIZE; k++) {
        *o++ = hex[d[k] >> 4];
        *o++ = hex[d[k] & 15];
        if (k == 0) *o++ = '/';
    }
    if (vtree_is_exec(t, i)) *o++ = 'x';
    *o = '\0';
}
