/* env.h — environment lookups as Node's process.env sees them. */
#ifndef VELO_LAUNCH_ENV_H
#define VELO_LAUNCH_ENV_H

/* 1 and *value when `name` is set (possibly ""), 0 when unset, -1 when the
 * environment names it twice (the launcher leaves such a run to Node). */
int env_lookup(const char *name, const char **value);

#endif
