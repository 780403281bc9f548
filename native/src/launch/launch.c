/* launch.c — velo-launch: velo's command without Node where an answer needs none.
 *
 *   velo-launch <entry.js|entry.cjs> [velo arguments]
 *
 * The bin (scripts/velo-bin.sh as dist/bundle/velo; bin/velo in a clone)
 * runs it when it is installed (the platform package @velo-rift/<platform>,
 * or native/build/ of a clone). For `velo uv sync` on an environment that is
 * up to date (uv_noop.c) it prints velo's answer and exits 0: Node's own
 * start-up (~30 ms) is longer than uv's whole no-op. Everything else — and
 * every case it is unsure of — becomes `node <entry> [velo arguments]`,
 * exec'd from PATH as `#!/usr/bin/env node` would, same arguments, same
 * environment. */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "paths.h"
#include "uv_noop.h"

static void exec_node(int argc, char **argv) {
  char **args = calloc((size_t)argc + 1, sizeof *args);
  if (!args) {
    fputs("velo: out of memory\n", stderr);
    exit(70);
  }
  args[0] = "node";
  for (int i = 1; i < argc; i++) args[i] = argv[i];
  execvp("node", args);
  fprintf(stderr, "velo: cannot run node (%s): velo needs Node on PATH\n", strerror(errno));
  exit(errno == ENOENT ? 127 : 126);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fputs("usage: velo-launch <velo entry script> [velo arguments]\n", stderr);
    return 2;
  }
  if (argc >= 4 && strcmp(argv[2], "uv") == 0 && strcmp(argv[3], "sync") == 0) {
    /* velo's modules are where Node finds the entry: symlinks resolved */
    char module_dir[PATH_MAX];
    if (realpath(argv[1], module_dir)) {
      path_dirname(module_dir);
      if (uv_noop(argc - 4, argv + 4, module_dir)) return 0;
    }
  }
  exec_node(argc, argv);
  return 70;
}
