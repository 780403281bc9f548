/* config.h — velo's configuration as src/config.ts loadConfig() and
 * cli/context.ts config() read it, only as far as the uv no-op needs it. */
#ifndef VELO_LAUNCH_CONFIG_H
#define VELO_LAUNCH_CONFIG_H

/* The configured projection ("link" or "mount") for a command run in `cwd`;
 * NULL when loading the configuration would fail, or might. */
const char *config_projection(const char *cwd);

#endif
