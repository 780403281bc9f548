/* fuse_fetch.h — a lazy mount's objects fetched on first open.
 *
 * A mount whose objects are not all in the store yet (filled from a remote
 * with --projection mount: src/remote/lazyFetcher.ts) has a fetcher: a
 * process at the other end of a socket that velo-mountd started with the
 * mount. When an object file is missing, vfs_open_object asks it here and
 * retries the open once it answers. The fetcher downloads the object,
 * re-hashes it (it must equal its name) and writes it into the store
 * atomically; it answers "ok" only then. Anything else — an error line, no
 * answer within VFETCH_TIMEOUT_S, the fetcher gone — is -EIO for that open:
 * never a wrong byte. Concurrent requests for one object are joined by the
 * fetcher (one download).
 *
 * Wire: requests "<id> <object name>\n" (the name as under objects/,
 * "ab/cdef…[x]"), answers "<id> ok\n" or "<id> error <why>\n", in any
 * order; any number in flight. */
#ifndef VELO_FUSE_FETCH_H
#define VELO_FUSE_FETCH_H

#define VFETCH_TIMEOUT_S 120

typedef struct vfetch vfetch;

/* Takes over fd (a connected stream socket) and starts reading answers.
 * NULL (errno set) when it cannot. */
vfetch *vfetch_new(int fd);

/* Asks for one object; 0 once the fetcher says it is in the store, else -EIO. */
int vfetch_object(vfetch *f, const char *name);

/* Counts of what was asked and answered (for logs). */
void vfetch_counts(vfetch *f, unsigned long *asked, unsigned long *failed);

/* Fails every request waiting and every later one (-EIO) without closing
 * anything: a stopping server calls it before joining its worker threads. */
void vfetch_cancel(vfetch *f);

/* Closes the socket (the fetcher sees EOF and exits), joins the reader. */
void vfetch_free(vfetch *f);

#endif
