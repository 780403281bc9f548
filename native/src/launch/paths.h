/* paths.h — the few path functions of Node's node:path and node:fs that
 * velo's no-op check uses, for absolute POSIX paths, with the same results. */
#ifndef VELO_LAUNCH_PATHS_H
#define VELO_LAUNCH_PATHS_H

#include <stddef.h>

#define LAUNCH_PATH_MAX 4096

/* path.resolve(base, rel) (= path.join(base, rel) for a relative rel) for an absolute, normalized base;
 * -1 when base is not absolute or the result does not fit. */
int path_resolve(const char *base, const char *rel, char out[LAUNCH_PATH_MAX]);
/* path.dirname of a normalized absolute path, in place. */
void path_dirname(char *path);
/* fs.existsSync(path) */
int path_exists(const char *path);
/* access(path, X_OK) succeeds */
int path_executable(const char *path);
/* The whole file, NUL-terminated, in *out (length in *len); -1 when it cannot be read. */
int read_file(const char *path, char **out, size_t *len);

#endif
