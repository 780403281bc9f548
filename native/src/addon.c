/* addon.c — registration of velo's native addon (Node-API version 8).
 *
 * Exports (see native/README.md for the full contract):
 *
 *   materialize(treeBuffer: Uint8Array, objectsDir: string, destDir: string,
 *               method: 'hardlink' | 'copy' | 'reflink', threads?: number)
 *     → Promise<{ files, dirs, symlinks, linked, reflinked, copied, fallbacks,
 *                 bytes: number, tampered: number[] }>
 *     Rejects with Error{code: 'CORRUPT_TREE'} for a corrupt tree, or
 *     Error{code: '<ERRNO NAME>', errno, syscall, path} for a filesystem error.
 *
 *   mount(treePath: string, objectsDir: string, mountpoint: string,
 *         opts?: { threads?: number, allowOther?: boolean, debug?: boolean,
 *                  onExit?: () => void })
 *     → MountHandle (an object with .mountpoint; keeps the process alive)
 *     Throws Error{code: 'CORRUPT_TREE' | 'FUSE_UNAVAILABLE' |
 *                  'FUSE_MOUNT_FAILED' | '<ERRNO NAME>'}.
 *
 *   unmount(handle: MountHandle) → boolean (false when it was not mounted)
 *
 *   mountStats(handle: MountHandle) → { passthrough: boolean, opens, backingOpens,
 *                                       reads: number } | null (not mounted)
 *
 *   writeObjects(objectsDir: string, names: string[], data: Buffer[], exec: Uint8Array,
 *                mtime: number) → Uint8Array of statuses, one per name
 *     (0 an intact object was there, 1 created, 2 a damaged file holds the name,
 *      3 O_TMPFILE or /proc/self/fd unavailable: not written). Synchronous.
 *     Throws Error{code: '<ERRNO NAME>', errno, syscall, path} on a filesystem error.
 *
 *   limitMallocArenas(n: number) → boolean
 *     Caps glibc's malloc arenas at n for threads that get one later (mallopt M_ARENA_MAX);
 *     false where the C library is not glibc (nothing done).
 *   tryFlock(fd: number) → boolean
 *     One non-blocking exclusive flock(2) on an open file (uv's lock on a venv's
 *     .lock): true when taken, false when another open file holds it. Closing
 *     the fd releases it. Throws Error{code: '<ERRNO NAME>'} on other errors.
 *
 *   version: string
 *   fuseVersion: string | undefined   (libfuse3's version; undefined when it cannot be loaded)
 *   fuseError: string | undefined     (why libfuse3 cannot be loaded)
 *   libfuse3 is opened with dlopen the first time either is read or a mount starts (fuse_dl.h).
 */
#include <stdio.h>

#include "fuse_dl.h"

#include "js_api.h"

static napi_value make_string(napi_env env, const char *s) {
    napi_value v;
    napi_create_string_utf8(env, s, NAPI_AUTO_LENGTH, &v);
    return v;
}

static napi_value js_fuse_version(napi_env env, napi_callback_info info) {
    const char *v = vfd_version();
    napi_value r;
    if (v) return make_string(env, v);
    napi_get_undefined(env, &r);
    return r;
}

static napi_value js_fuse_error(napi_env env, napi_callback_info info) {
    char why[512];
    napi_value r;
    if (vfd_load(why, sizeof why) != 0) return make_string(env, why);
    napi_get_undefined(env, &r);
    return r;
}

NAPI_MODULE_INIT() {
    napi_property_descriptor props[] = {
        { "materialize", NULL, js_materialize, NULL, NULL, NULL, napi_enumerable, NULL },
        { "mount", NULL, js_mount, NULL, NULL, NULL, napi_enumerable, NULL },
        { "unmount", NULL, js_unmount, NULL, NULL, NULL, napi_enumerable, NULL },
        { "mountStats", NULL, js_mount_stats, NULL, NULL, NULL, napi_enumerable, NULL },
        { "writeObjects", NULL, js_write_objects, NULL, NULL, NULL, napi_enumerable, NULL },
        { "limitMallocArenas", NULL, js_limit_malloc_arenas, NULL, NULL, NULL, napi_enumerable, NULL },
        { "tryFlock", NULL, js_try_flock, NULL, NULL, NULL, napi_enumerable, NULL },
        { "version", NULL, NULL, NULL, NULL, make_string(env, "1"), napi_enumerable, NULL },
        { "fuseVersion", NULL, NULL, js_fuse_version, NULL, NULL, napi_enumerable, NULL },
        { "fuseError", NULL, NULL, js_fuse_error, NULL, NULL, napi_enumerable, NULL },
    };
    if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) return NULL;
    return exports;
}
