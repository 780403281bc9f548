/* js_flock.c — tryFlock(fd) → boolean.
 * One non-blocking attempt at an exclusive flock(2) on an open file: true when
 * taken, false when another open file holds it (EWOULDBLOCK). The lock is
 * the one uv takes on a virtual environment's .lock file (uv-fs LockedFile:
 * flock, per open file description), so a velo holding it and a uv waiting
 * for it see each other. Closing the fd releases it; the caller polls, so the
 * event loop never blocks. */
#include <errno.h>
#include <stdio.h>
#include <sys/file.h>

#include "errname.h"
#include "js_api.h"
#include "js_util.h"

napi_value js_try_flock(napi_env env, napi_callback_info info) {
    size_t argc = 1;
    napi_value argv[1];
    JS_CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
    int32_t fd = -1;
    if (argc < 1 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0)
        return js_throw(env, "ERR_INVALID_ARG_TYPE", "tryFlock(fd): fd must be an open file descriptor");
    int rc;
    do rc = flock(fd, LOCK_EX | LOCK_NB);
    while (rc != 0 && errno == EINTR);
    napi_value out;
    if (rc == 0 || errno == EWOULDBLOCK) {
        JS_CHECK(env, napi_get_boolean(env, rc == 0, &out));
        return out;
    }
    int err = errno;
    char message[200];
    snprintf(message, sizeof message, "%s: flock fd %d", velo_errname(err), fd);
    napi_throw(env, js_make_error(env, velo_errname(err), message, err, "flock", ""));
    return NULL;
}
