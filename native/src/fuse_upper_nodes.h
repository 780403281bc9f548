/* fuse_upper_nodes.h — the inodes of a copy-up mount that are not pristine
 * tree entries: a table by inode number and by (parent inode, name).
 *
 * A node exists for an inode the kernel holds whose state the tree alone
 * does not tell: a tree entry copied up, moved, deleted or turned into a
 * merged directory; anything created through the mount. Not thread-safe:
 * the caller (fuse_upper.c) holds its lock. */
#ifndef VELO_FUSE_UPPER_NODES_H
#define VELO_FUSE_UPPER_NODES_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <fuse_lowlevel.h>

#define VNODE_NO_TREE UINT32_MAX

typedef struct vnode {
    fuse_ino_t ino;
    fuse_ino_t parent;  /* the directory it is linked in; 0 once deleted (the root: 0 too) */
    char *name;         /* its name there; NULL once deleted */
    uint32_t tree;      /* the tree entry it shows (a copied-up file, a merged directory), else VNODE_NO_TREE */
    mode_t type;        /* S_IFREG, S_IFDIR, S_IFLNK, S_IFIFO, S_IFSOCK */
    int upper;          /* its bytes (or, for a directory, a directory) are in the upper layer */
    uint64_t nlookup;   /* the kernel's references (inodes above the tree's; tree inodes count elsewhere) */
    uint32_t children;  /* nodes linked in it */
    int fd;             /* an upper file kept open once deleted while the kernel holds it, else -1 */
    struct vnode *ino_next, *name_next;
} vnode;

typedef struct vnodes {
    vnode **by_ino, **by_name;
    size_t buckets;
    size_t count;
} vnodes;

/* 0 or -1 (ENOMEM). */
int vnodes_init(vnodes *t, size_t buckets);

/* Frees every node (closing kept descriptors) and the table. */
void vnodes_free(vnodes *t);

vnode *vnodes_get(const vnodes *t, fuse_ino_t ino);

/* The node linked at (parent, name), or NULL. */
vnode *vnodes_child(const vnodes *t, fuse_ino_t parent, const char *name);

/* A new node, linked at (parent, name) when parent is not 0. NULL: ENOMEM. */
vnode *vnodes_add(vnodes *t, fuse_ino_t ino, fuse_ino_t parent, const char *name, uint32_t tree, mode_t type, int upper);

/* Takes n out of its directory (deleted, or about to be relinked). */
void vnodes_unlink(vnodes *t, vnode *n);

/* Links n at (parent, name) (n must be unlinked). 0 or -1 (ENOMEM). */
int vnodes_link(vnodes *t, vnode *n, fuse_ino_t parent, const char *name);

/* Unlinks n if linked, removes it from the table, closes its fd, frees it. */
void vnodes_remove(vnodes *t, vnode *n);

#endif
