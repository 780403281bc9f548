/* fuse_upper_nodes.c — the node table of a copy-up mount (see the header). */
#define _GNU_SOURCE
#include "fuse_upper_nodes.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static size_t ino_bucket(const vnodes *t, fuse_ino_t ino) { return (size_t)(ino * 0x9E3779B97F4A7C15ull >> 20) % t->buckets; }

static size_t name_bucket(const vnodes *t, fuse_ino_t parent, const char *name) {
    uint64_t h = 1469598103934665603ull ^ parent;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) h = (h ^ *p) * 1099511628211ull;
    return (size_t)(h % t->buckets);
}

int vnodes_init(vnodes *t, size_t buckets) {
    t->buckets = buckets;
    t->count = 0;
    t->by_ino = calloc(buckets, sizeof *t->by_ino);
    t->by_name = calloc(buckets, sizeof *t->by_name);
    if (!t->by_ino || !t->by_name) {
        free(t->by_ino);
        free(t->by_name);
        t->by_ino = t->by_name = NULL;
        return -1;
    }
    return 0;
}

void vnodes_free(vnodes *t) {
    if (!t->by_ino) return;
    for (size_t b = 0; b < t->buckets; b++) {
        for (vnode *n = t->by_ino[b], *next; n; n = next) {
            next = n->ino_next;
            if (n->fd >= 0) close(n->fd);
            free(n->name);
            free(n);
        }
    }
    free(t->by_ino);
    free(t->by_name);
    t->by_ino = t->by_name = NULL;
    t->count = 0;
}

vnode *vnodes_get(const vnodes *t, fuse_ino_t ino) {
    for (vnode *n = t->by_ino[ino_bucket(t, ino)]; n; n = n->ino_next)
        if (n->ino == ino) return n;
    return NULL;
}

vnode *vnodes_child(const vnodes *t, fuse_ino_t parent, const char *name) {
    for (vnode *n = t->by_name[name_bucket(t, parent, name)]; n; n = n->name_next)
        if (n->parent == parent && n->name && strcmp(n->name, name) == 0) return n;
    return NULL;
}

int vnodes_link(vnodes *t, vnode *n, fuse_ino_t parent, const char *name) {
    char *copy = strdup(name);
    if (!copy) return -1;
    n->parent = parent;
    n->name = copy;
    size_t b = name_bucket(t, parent, name);
    n->name_next = t->by_name[b];
    t->by_name[b] = n;
    vnode *p = vnodes_get(t, parent);
    if (p) p->children++;
    return 0;
}

void vnodes_unlink(vnodes *t, vnode *n) {
    if (!n->name) return;
    vnode **pp = &t->by_name[name_bucket(t, n->parent, n->name)];
    for (; *pp; pp = &(*pp)->name_next)
        if (*pp == n) { *pp = n->name_next; break; }
    vnode *p = vnodes_get(t, n->parent);
    if (p && p->children > 0) p->children--;
    free(n->name);
    n->name = NULL;
    n->parent = 0;
    n->name_next = NULL;
}

vnode *vnodes_add(vnodes *t, fuse_ino_t ino, fuse_ino_t parent, const char *name, uint32_t tree, mode_t type, int upper) {
    vnode *n = calloc(1, sizeof *n);
    if (!n) return NULL;
    n->ino = ino;
    n->tree = tree;
    n->type = type;
    n->upper = upper;
    n->fd = -1;
    if (parent != 0 && vnodes_link(t, n, parent, name) != 0) { free(n); return NULL; }
    size_t b = ino_bucket(t, ino);
    n->ino_next = t->by_ino[b];
    t->by_ino[b] = n;
    t->count++;
    return n;
}

void vnodes_remove(vnodes *t, vnode *n) {
    vnodes_unlink(t, n);
    vnode **pp = &t->by_ino[ino_bucket(t, n->ino)];
    for (; *pp; pp = &(*pp)->ino_next)
        if (*pp == n) { *pp = n->ino_next; break; }
    if (n->fd >= 0) close(n->fd);
    free(n);
    t->count--;
}
