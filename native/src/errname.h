/* errname.h — the symbolic name of an errno value ("ENOSPC"). */
#ifndef VELO_ERRNAME_H
#define VELO_ERRNAME_H

/* Returns a static string such as "ENOENT"; "EUNKNOWN" for unknown values. */
const char *velo_errname(int err);

#endif
