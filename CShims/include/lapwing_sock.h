// Unix-domain sockets for the control plane.
//
// Why C: the CMSG_* macros that build and walk SCM_RIGHTS control messages cannot be
// imported into Swift, struct ucred (SO_PEERCRED) needs _GNU_SOURCE, and filling a
// sockaddr_un (with its 108-byte path limit) is clumsy from Swift. Every function returns
// a result >= 0 or -errno; every descriptor it creates is close-on-exec.
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/// The most descriptors one frame may carry (the cmsg buffer of lw_recv_with_fds has room for these).
#define LW_MAX_FDS_PER_FRAME 16

/// socket(AF_UNIX, SOCK_STREAM) and connect(path). Returns the fd (blocking) or -errno
/// (-ENAMETOOLONG for a path longer than sun_path holds).
int lw_unix_connect(const char *path);
/// socket(AF_UNIX, SOCK_STREAM), bind(path), chmod(path, mode), listen(backlog). The socket is
/// non-blocking. Does not remove an existing file (bind fails with -EADDRINUSE). Returns the fd or -errno;
/// on failure after bind the file is unlinked again.
int lw_unix_listen(const char *path, mode_t mode, int backlog);
/// accept4(SOCK_CLOEXEC) on a listening socket; the new socket is blocking. Returns the fd or -errno
/// (-EAGAIN when no connection is waiting on a non-blocking listener).
int lw_unix_accept(int listen_fd);
/// socketpair(AF_UNIX, SOCK_STREAM). Returns 0 and sets fds[0], fds[1], or -errno.
int lw_unix_socketpair(int fds[2]);
/// Whether fd is a listening AF_UNIX stream socket (SO_ACCEPTCONN, SO_DOMAIN, SO_TYPE): 1, 0, or -errno.
int lw_is_unix_listener(int fd);
/// Sets or clears O_NONBLOCK (and sets FD_CLOEXEC). Returns 0 or -errno.
int lw_set_nonblocking(int fd, int on);

/// One sendmsg(MSG_NOSIGNAL) of buf[0, len) with nfds descriptors (0..LW_MAX_FDS_PER_FRAME)
/// attached as SCM_RIGHTS. Returns the bytes sent (possibly fewer than len) or -errno.
ssize_t lw_send_with_fds(int sock, const void *buf, size_t len, const int *fds, int nfds);
/// One recvmsg(MSG_CMSG_CLOEXEC) into buf[0, len). Descriptors that arrive are stored in fds
/// (room for max_fds) and counted in *nfds. When the peer attached more than fit (MSG_CTRUNC; the
/// kernel has closed the excess), *truncated is set to 1. Returns the bytes read (0 at end of
/// stream) or -errno.
ssize_t lw_recv_with_fds(int sock, void *buf, size_t len, int *fds, int max_fds, int *nfds, int *truncated);
/// SO_PEERCRED of a connected socket: the peer's pid, uid and gid as of connect/socketpair.
/// Returns 0 or -errno.
int lw_peer_credentials(int sock, int32_t *pid, uint32_t *uid, uint32_t *gid);

/// Raises this process's soft RLIMIT_NOFILE toward `want` (never above the hard limit, never
/// lowers it): systemd starts services with a soft limit of 1024 and leaves raising it to programs
/// that need more. Returns the soft limit now in force, or -errno.
long lw_raise_fd_limit(long want);
/// An open, close-on-exec descriptor of /dev/null to hold in reserve: closed to make room for one
/// accept when the process is out of descriptors (EMFILE), then reopened. Returns the fd or -errno.
int lw_open_reserve_fd(void);
/// malloc_trim(0): hands memory that free() kept back to the kernel (the buffers of many
/// closed connections otherwise stay in the process's RSS). Returns 1 if memory was released.
int lw_release_free_memory(void);

/// epoll, with the descriptor itself as the event's data (struct epoll_event is packed on x86-64,
/// so Swift never touches it). Interest bits: LW_EV_IN, LW_EV_OUT; reported bits add LW_EV_HUP
/// and LW_EV_ERR.
enum { LW_EV_IN = 1, LW_EV_OUT = 2, LW_EV_HUP = 4, LW_EV_ERR = 8 };
/// A close-on-exec epoll instance, or -errno.
int lw_epoll_create(void);
/// Adds (add = 1) or changes (add = 0) the interest in `fd`. Returns 0 or -errno.
int lw_epoll_watch(int ep, int fd, unsigned interest, int add);
/// Stops watching `fd` (before it is closed). Returns 0 or -errno.
int lw_epoll_forget(int ep, int fd);
/// Waits up to timeout_ms for at most `max` events: fds[i] got events[i]. Returns the count or -errno.
int lw_epoll_wait(int ep, int *fds, unsigned *events, int max, int timeout_ms);

/// One datagram of `count` bytes to the AF_UNIX datagram socket at `path` (systemd's journal
/// socket: the native journal protocol), from one socket kept open. Returns 0 or -errno.
int lw_datagram_send(const char *path, const void *bytes, size_t count);

/// A TCP socket listening on a loopback address (127.0.0.0/8 or ::1) `host`:`port`, for the
/// metrics endpoint. Returns the fd, -EPERM for an address that is not loopback, or -errno.
int lw_tcp_listen_loopback(const char *host, int port, int backlog);

/// 1 if `fd` is a listening TCP (IPv4 or IPv6) socket, else 0.
int lw_is_tcp_listener(int fd);

#ifdef __cplusplus
}
#endif
