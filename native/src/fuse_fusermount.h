/* fuse_fusermount.h — mounting and unmounting without root through
 * fusermount3 (setuid), the way libfuse does when mount(2) is refused —
 * but also where /dev/fuse itself is closed to the user (mode 0600), where
 * libfuse 3.14 gives up before trying fusermount3. */
#ifndef VELO_FUSE_FUSERMOUNT_H
#define VELO_FUSE_FUSERMOUNT_H

#include <stddef.h>

/* Runs `fusermount3 -o <opts> -- <mountpoint>` with _FUSE_COMMFD set and
 * receives the /dev/fuse descriptor it opened and mounted. Returns the
 * descriptor, or -1 with a message in err. */
int vfm_mount(const char *mountpoint, const char *opts, char *err, size_t errlen);

/* Lazily unmounts mountpoint with `fusermount3 -u -z`. 0 or -1. */
int vfm_unmount(const char *mountpoint);

#endif
