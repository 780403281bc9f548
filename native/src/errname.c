/* errname.c — errno → "ENAME" via glibc's strerrorname_np (glibc >= 2.32). */
#define _GNU_SOURCE
#include "errname.h"

#include <string.h>

const char *velo_errname(int err) {
    const char *name = strerrorname_np(err);
    return name ? name : "EUNKNOWN";
}
