// See include/lapwing_shm.h.
#define _GNU_SOURCE
#include "lapwing_shm.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

int lw_shm_open(const char *name, int oflag, mode_t mode) {
  int fd = shm_open(name, oflag | O_CLOEXEC, mode);
  if (fd < 0) return -errno;
  if ((oflag & O_CREAT) && fchmod(fd, mode) != 0) {
    int err = errno;
    close(fd);
    return -err;
  }
  return fd;
}

int lw_shm_unlink(const char *name) { return shm_unlink(name) == 0 ? 0 : -errno; }

int lw_shm_truncate(int fd, uint64_t size) {
  if (size > (uint64_t)INT64_MAX) return -EFBIG;
  return ftruncate(fd, (off_t)size) == 0 ? 0 : -errno;
}

int lw_shm_fallocate(int fd, uint64_t size) {
  if (size > (uint64_t)INT64_MAX) return -EFBIG;
  int err = posix_fallocate(fd, 0, (off_t)size);  // returns the error; errno is untouched
  return -err;
}

int64_t lw_fd_size(int fd) {
  struct stat st;
  if (fstat(fd, &st) != 0) return -errno;
  return (int64_t)st.st_size;
}

int lw_fd_mode(int fd) {
  struct stat st;
  if (fstat(fd, &st) != 0) return -errno;
  return (int)(st.st_mode & 07777);
}

int lw_fd_fs_available(int fd, uint64_t *available, uint64_t *total) {
  struct statvfs sv;
  if (fstatvfs(fd, &sv) != 0) return -errno;
  *available = (uint64_t)sv.f_bavail * sv.f_frsize;
  *total = (uint64_t)sv.f_blocks * sv.f_frsize;
  return 0;
}

int lw_pread_exact(int fd, void *buf, size_t len, uint64_t offset) {
  size_t done = 0;
  while (done < len) {
    ssize_t n = pread(fd, (char *)buf + done, len - done, (off_t)(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    if (n == 0) return -ENODATA;
    done += (size_t)n;
  }
  return 0;
}

int lw_map_shared_aligned(int fd, uint64_t size, uint64_t align, int writable, void **out) {
  long page = sysconf(_SC_PAGESIZE);
  if (size == 0 || align < (uint64_t)page || (align & (align - 1)) != 0) return -EINVAL;
  if (size > SIZE_MAX - align) return -ENOMEM;
  // Reserve size + align of address space, place the shared mapping on an aligned address
  // inside it, and give back the slack on both sides.
  size_t reserve = (size_t)(size + align);
  char *r = mmap(NULL, reserve, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (r == MAP_FAILED) return -errno;
  uintptr_t start = ((uintptr_t)r + align - 1) & ~(uintptr_t)(align - 1);
  int prot = PROT_READ | (writable ? PROT_WRITE : 0);
  void *m = mmap((void *)start, (size_t)size, prot, MAP_SHARED | MAP_FIXED, fd, 0);
  if (m == MAP_FAILED) {
    int err = errno;
    munmap(r, reserve);
    return -err;
  }
  size_t head = start - (uintptr_t)r;
  size_t tail = reserve - head - (size_t)size;
  if (head) munmap(r, head);
  if (tail) munmap((char *)start + size, tail);
  *out = m;
  return 0;
}

int lw_unmap(void *addr, uint64_t size) { return munmap(addr, (size_t)size) == 0 ? 0 : -errno; }

int lw_close(int fd) { return close(fd) == 0 ? 0 : -errno; }

int lw_memfd_create(const char *name) {
  int fd = memfd_create(name, MFD_CLOEXEC);
  return fd < 0 ? -errno : fd;
}
