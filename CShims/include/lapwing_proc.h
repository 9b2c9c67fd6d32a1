// Process plumbing for the job host and its children.
//
// Why C: prctl() is variadic (Swift cannot call it), the check that the parent is still
// alive must follow PR_SET_PDEATHSIG immediately in the child, and signal handlers must be
// plain C that only sets a flag (no Swift runs inside a signal handler).
#pragma once
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/// fork(). In the child: ask for `death_signal` when the parent dies, then make sure the
/// parent did not die before that (getppid() != parent), exiting at once if it did.
/// Returns the child's pid in the parent, 0 in the child, -errno on failure.
/// Only call from a single-threaded process.
pid_t lw_fork_child(int death_signal);

/// Sets the calling process's name as ps and top show it (at most 15 bytes kept).
int lw_set_process_name(const char *name);
/// Makes this thread's floating point flush denormal results to zero and read denormal inputs
/// as zero (x86-64: MXCSR FTZ and DAZ; AArch64: FPCR.FZ). fork() keeps the setting. Without it,
/// momentum entries that decay geometrically (inputs that are always 0) sink into the denormal
/// range, where every multiply takes a microcode assist. Returns 1 when set, 0 where unsupported.
int lw_flush_denormals(void);

/// Installs a handler for SIGINT, SIGTERM, SIGHUP and SIGQUIT that only records the signal.
/// SIGPIPE is ignored. Returns 0 or -errno.
int lw_install_stop_handlers(void);

/// The last stop signal received (0 if none).
int lw_stop_signal(void);

/// Installs a SIGUSR1 handler that records a request for a checkpoint (`lapwing checkpoint`,
/// sent by the daemon to a job host). Returns 0 or -errno.
int lw_install_checkpoint_handler(void);

/// 1 if a checkpoint was requested since the last call (and clears the request), else 0.
int lw_take_checkpoint_request(void);

/// Restores default dispositions of the stop signals (in a child before it runs its own loop).
int lw_reset_stop_handlers(void);

/// pipe2(fds, O_CLOEXEC) (Glibc's Swift module hides pipe2). Returns 0 or -errno.
int lw_pipe_cloexec(int fds[2]);

/// Makes the calling process a child subreaper (orphans below it are reparented to it).
int lw_set_child_subreaper(void);

#ifdef __cplusplus
}
#endif
