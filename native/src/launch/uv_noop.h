/* uv_noop.h — the no-op `velo uv sync`, answered as cli/uvCommand.ts does. */
#ifndef VELO_LAUNCH_UV_NOOP_H
#define VELO_LAUNCH_UV_NOOP_H

/* The .velo-state format this launcher reads (src/uv/envState.ts STATE_VERSION). */
#define UV_STATE_VERSION "3"

/* `args` are the words after `velo uv sync`; `module_dir` is the directory of
 * velo's code (where src/uv/uvBinary.ts looks for velo's package root).
 * Returns 1 when the environment is up to date and the answer was printed
 * exactly as velo prints it; 0 when Node must run the command (anything
 * else: a sync to do, an error to report, or a case the launcher does not
 * fully model). */
int uv_noop(int argc, char **args, const char *module_dir);

#endif
