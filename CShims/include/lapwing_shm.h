// POSIX shared memory for the job arena. Why C: Glibc's shm_open and posix_fallocate report
// errors in different ways (errno vs. the return value) and the 2 MiB aligned MAP_SHARED
// mapping takes a reserve-then-MAP_FIXED dance; these wrappers give Swift one convention:
// a result >= 0, or -errno.
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/// shm_open(name, oflag, mode), then fchmod(fd, mode) when O_CREAT is given so the umask cannot
/// change the mode. Returns the fd or -errno.
int lw_shm_open(const char *name, int oflag, mode_t mode);
/// shm_unlink(name). Returns 0 or -errno.
int lw_shm_unlink(const char *name);
/// ftruncate(fd, size). Returns 0 or -errno.
int lw_shm_truncate(int fd, uint64_t size);
/// posix_fallocate(fd, 0, size): allocates every page now, so a short /dev/shm fails here
/// (ENOSPC) and not as a SIGBUS on first touch. Returns 0 or -errno.
int lw_shm_fallocate(int fd, uint64_t size);
/// The size of the object behind fd (fstat). Returns the size or -errno.
int64_t lw_fd_size(int fd);
/// The bytes available to an unprivileged writer on fd's file system (fstatvfs). Returns 0 or -errno.
int lw_fd_fs_available(int fd, uint64_t *available, uint64_t *total);
/// The mode bits (fstat st_mode & 07777) of fd. Returns them or -errno.
int lw_fd_mode(int fd);
/// pread of exactly len bytes at offset; a short file gives -ENODATA. Returns 0 or -errno.
int lw_pread_exact(int fd, void *buf, size_t len, uint64_t offset);
/// Maps `size` bytes of fd MAP_SHARED at an address aligned to `align` (a power of two that is
/// a multiple of the page size). Returns 0 and sets *out, or -errno.
int lw_map_shared_aligned(int fd, uint64_t size, uint64_t align, int writable, void **out);
/// munmap(addr, size). Returns 0 or -errno.
int lw_unmap(void *addr, uint64_t size);
/// close(fd) (not retried on EINTR: Linux has closed the fd already). Returns 0 or -errno.
int lw_close(int fd);
/// memfd_create(name, MFD_CLOEXEC): an anonymous shared-memory file whose name shows in
/// /proc/PID/maps and numa_maps ("/memfd:NAME"), so that tools can find its pages. Returns the
/// fd or -errno.
int lw_memfd_create(const char *name);
