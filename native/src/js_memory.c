/* js_memory.c — limitMallocArenas(n) → boolean.
 *
 * glibc gives each thread that allocates under contention a malloc arena of
 * its own (up to 8 per core), and an arena keeps the pages its thread freed.
 * The tarball worker threads allocate and free every tarball's buffers, so
 * each ends up holding tens of MB that the other cannot reuse. Capping the
 * number of arenas before the threads start (mallopt M_ARENA_MAX) lets them
 * share free memory: lower peak RSS. It changes only where later
 * allocations come from; threads that already have an arena keep it.
 * false (nothing done) where the C library is not glibc.
 */
#include <stdlib.h> /* defines __GLIBC__ on glibc */
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "js_api.h"

napi_value js_limit_malloc_arenas(napi_env env, napi_callback_info info) {
    size_t argc = 1;
    napi_value argv[1];
    int32_t n = 0;
    int done = 0;
    napi_value r;
    JS_CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
    if (argc < 1 || napi_get_value_int32(env, argv[0], &n) != napi_ok || n < 1)
        return js_throw(env, "ERR_INVALID_ARG_TYPE", "limitMallocArenas(n): n must be a positive integer");
#if defined(__GLIBC__) && defined(M_ARENA_MAX)
    done = mallopt(M_ARENA_MAX, n) == 1;
#endif
    JS_CHECK(env, napi_get_boolean(env, done, &r));
    return r;
}
