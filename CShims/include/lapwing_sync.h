// Waiting on a word of shared memory, for the arena's barriers (ArenaBarrier.swift).
//
// Why C: the futex call is reached only through syscall(), which is variadic (Swift cannot call
// it), and the spin-wait hint is an instruction (x86 `pause`, AArch64 `yield`), not a function.
// The atomics themselves stay in Swift (swift-atomics over the mapping); these only sleep and wake.
// The futexes are *shared* (no FUTEX_PRIVATE_FLAG): the waiters are different processes that map
// the same MAP_SHARED object, so the kernel must key the word by its page, not by one address space.
#pragma once
#include <stdint.h>

/// FUTEX_WAIT on `addr`: sleeps while *addr == expected, for at most timeout_ns nanoseconds
/// (0: no limit). Returns 0 when woken (or spuriously), -EAGAIN when *addr != expected already,
/// -ETIMEDOUT, -EINTR, or another -errno.
int lw_futex_wait(uint32_t *addr, uint32_t expected, uint64_t timeout_ns);

/// FUTEX_WAKE on `addr`: wakes at most `count` waiters (INT32_MAX: all). Returns the number woken
/// or -errno.
int lw_futex_wake(uint32_t *addr, int32_t count);

/// One spin-wait hint to the CPU (x86 `pause`, AArch64 `yield`): lets the sibling hyper-thread run
/// and saves power while a loop polls a word another CPU will write. Inline: it sits in spin loops.
static inline void lw_cpu_pause(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

/// sched_yield(): gives the CPU to another runnable process, if any. Returns 0 or -errno.
int lw_yield(void);
