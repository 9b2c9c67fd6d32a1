#define _GNU_SOURCE
#include "lapwing_proc.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

static volatile sig_atomic_t stop_signal;

pid_t lw_fork_child(int death_signal) {
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) return -errno;
    if (pid == 0) {
        if (prctl(PR_SET_PDEATHSIG, death_signal) != 0) _exit(127);
        // The parent may have died between fork() and prctl(): then no signal comes.
        if (getppid() != parent) _exit(127);
    }
    return pid;
}

int lw_set_process_name(const char *name) {
    return prctl(PR_SET_NAME, (unsigned long)name, 0, 0, 0) == 0 ? 0 : -errno;
}

static void record(int sig) { stop_signal = sig; }

static const int stop_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};

int lw_install_stop_handlers(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = record;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof stop_signals / sizeof *stop_signals; i++)
        if (sigaction(stop_signals[i], &sa, NULL) != 0) return -errno;
    signal(SIGPIPE, SIG_IGN);
    // A blocked mask inherited from a launcher's thread would keep these from ever arriving.
    sigset_t set;
    sigemptyset(&set);
    for (size_t i = 0; i < sizeof stop_signals / sizeof *stop_signals; i++) sigaddset(&set, stop_signals[i]);
    return sigprocmask(SIG_UNBLOCK, &set, NULL) == 0 ? 0 : -errno;
}

int lw_stop_signal(void) { return stop_signal; }

static volatile sig_atomic_t checkpoint_requested = 0;

static void request_checkpoint(int sig) {
    (void)sig;
    checkpoint_requested = 1;
}

int lw_install_checkpoint_handler(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = request_checkpoint;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGUSR1, &sa, NULL) != 0) return -errno;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    return sigprocmask(SIG_UNBLOCK, &set, NULL) == 0 ? 0 : -errno;
}

int lw_take_checkpoint_request(void) {
    if (!checkpoint_requested) return 0;
    checkpoint_requested = 0;
    return 1;
}

int lw_reset_stop_handlers(void) {
    for (size_t i = 0; i < sizeof stop_signals / sizeof *stop_signals; i++)
        if (signal(stop_signals[i], SIG_DFL) == SIG_ERR) return -errno;
    stop_signal = 0;
    return 0;
}

int lw_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC) == 0 ? 0 : -errno; }

int lw_set_child_subreaper(void) {
    return prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0 ? 0 : -errno;
}

#if defined(__x86_64__)
#include <pmmintrin.h>
#include <xmmintrin.h>
int lw_flush_denormals(void) {
  _MM_SET_FLUSH_ZERO_MODE(_MM_FLUSH_ZERO_ON);
  _MM_SET_DENORMALS_ZERO_MODE(_MM_DENORMALS_ZERO_ON);
  return 1;
}
#elif defined(__aarch64__)
int lw_flush_denormals(void) {
  uint64_t fpcr;
  __asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
  fpcr |= (1ull << 24);  // FZ
  __asm__ volatile("msr fpcr, %0" : : "r"(fpcr));
  return 1;
}
#else
int lw_flush_denormals(void) { return 0; }
#endif
