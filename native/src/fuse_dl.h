/* fuse_dl.h — libfuse3 loaded at run time (dlopen), not linked.
 *
 * velo's addon and velo-mountd call libfuse's functions by their usual
 * names; fuse_dl.c defines those names as thin forwarders to the library it
 * opens with dlopen("libfuse3.so.3"). So a machine without libfuse3 still
 * loads the addon (materialize works; mounts report FUSE_UNAVAILABLE), and
 * a prebuilt binary needs no libfuse3 at link time. The forwarders bind the
 * same symbol versions a direct link against the 3.14 headers would
 * (FUSE_3.0, fuse_log and fuse_set_log_func FUSE_3.7), so a newer libfuse3
 * with re-versioned functions keeps the ABI these sources were written for.
 */
#ifndef VELO_FUSE_DL_H
#define VELO_FUSE_DL_H

#include <stddef.h>

/* Open libfuse3 and resolve every function velo uses, once (thread-safe).
 * Returns 0, or -1 with why (NUL-terminated, at most n bytes) filled. */
int vfd_load(char *why, size_t n);

/* libfuse's package version ("3.14.0"), or NULL when it cannot be loaded. */
const char *vfd_version(void);

#endif
