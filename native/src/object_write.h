/* object_write.h — writing finished objects into a store (O_TMPFILE + linkat). */
#ifndef VELO_OBJECT_WRITE_H
#define VELO_OBJECT_WRITE_H

#include <stddef.h>
#include <stdint.h>

enum {
    VOBJ_EXISTED = 0,     /* an intact object was already there; nothing written */
    VOBJ_CREATED = 1,     /* written under its final name */
    VOBJ_DAMAGED = 2,     /* a file that is not the object (size/mtime differ) holds the name; nothing written */
    VOBJ_UNSUPPORTED = 3, /* no O_TMPFILE (filesystem, kernel) or no /proc/self/fd; nothing written */
};

typedef struct vobj_error {
    int err;
    char syscall[16];
    char path[256];
} vobj_error;

/* Write `data` as objects/<name> (name "ab/cdef…[x]") below the open objects/ directory `objects_fd`,
 * with mode 0444 (0555 when exec) and mtime `mtime` seconds. Returns a VOBJ_* status, or -1 with `e` set. */
int vobj_write(int objects_fd, const char *name, const uint8_t *data, size_t len, int exec, long long mtime, vobj_error *e);

#endif
