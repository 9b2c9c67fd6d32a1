#define _GNU_SOURCE
#include "lapwing_sync.h"

#include <errno.h>
#include <linux/futex.h>
#include <sched.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int lw_futex_wait(uint32_t *addr, uint32_t expected, uint64_t timeout_ns) {
  struct timespec ts, *limit = NULL;
  if (timeout_ns > 0) {
    ts.tv_sec = (time_t)(timeout_ns / 1000000000u);
    ts.tv_nsec = (long)(timeout_ns % 1000000000u);
    limit = &ts;
  }
  // FUTEX_WAIT's timeout is relative (CLOCK_MONOTONIC). Not FUTEX_WAIT_PRIVATE: see the header.
  long rc = syscall(SYS_futex, addr, FUTEX_WAIT, expected, limit, NULL, 0);
  return rc == 0 ? 0 : -errno;
}

int lw_futex_wake(uint32_t *addr, int32_t count) {
  long rc = syscall(SYS_futex, addr, FUTEX_WAKE, count, NULL, NULL, 0);
  return rc >= 0 ? (int)rc : -errno;
}

int lw_yield(void) { return sched_yield() == 0 ? 0 : -errno; }
