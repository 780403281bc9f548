/* fs_copy.h — moving file bytes between two open descriptors. */
#ifndef VELO_FS_COPY_H
#define VELO_FS_COPY_H

#include <stdint.h>

/* Copies `size` bytes from offset 0 of src to dst: copy_file_range, falling
 * back to read/write where the kernel refuses. Returns 0 or an errno. */
int vcopy_fd(int src, int dst, uint64_t size);

/* Clones src into dst with FICLONE. Returns 0 or an errno
 * (EOPNOTSUPP/EXDEV/EINVAL/ENOTTY mean "no reflink here"). */
int vreflink_fd(int src, int dst);

/* True for the errnos after which a reflink should become a copy. */
int vreflink_unsupported(int err);

#endif
