// See include/lapwing_sock.h.
#define _GNU_SOURCE
#include "lapwing_sock.h"

#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <malloc.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

_Static_assert(sizeof(int) == 4, "fds are 32-bit");

static int fill_address(struct sockaddr_un *addr, const char *path) {
  memset(addr, 0, sizeof(*addr));
  addr->sun_family = AF_UNIX;
  size_t n = strlen(path);
  if (n == 0) return -EINVAL;
  if (n >= sizeof(addr->sun_path)) return -ENAMETOOLONG;
  memcpy(addr->sun_path, path, n + 1);
  return 0;
}

int lw_unix_connect(const char *path) {
  struct sockaddr_un addr;
  int r = fill_address(&addr, path);
  if (r < 0) return r;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  for (;;) {
    if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0) return fd;
    if (errno != EINTR) break;
  }
  int err = errno;
  close(fd);
  return -err;
}

int lw_unix_listen(const char *path, mode_t mode, int backlog) {
  struct sockaddr_un addr;
  int r = fill_address(&addr, path);
  if (r < 0) return r;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return -errno;
  if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
    int err = errno;
    close(fd);
    return -err;
  }
  // chmod before listen: nobody can connect yet, so the umask-shaped mode of bind never matters.
  if (chmod(path, mode) != 0 || listen(fd, backlog) != 0) {
    int err = errno;
    unlink(path);
    close(fd);
    return -err;
  }
  return fd;
}

int lw_unix_accept(int listen_fd) {
  for (;;) {
    int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd >= 0) return fd;
    if (errno != EINTR) return -errno;
  }
}

int lw_unix_socketpair(int fds[2]) {
  return socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0 ? 0 : -errno;
}

int lw_is_unix_listener(int fd) {
  int value = 0;
  socklen_t len = sizeof(value);
  if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &value, &len) != 0) return -errno;
  if (value != AF_UNIX) return 0;
  len = sizeof(value);
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &value, &len) != 0) return -errno;
  if (value != SOCK_STREAM) return 0;
  len = sizeof(value);
  if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &value, &len) != 0) return -errno;
  return value ? 1 : 0;
}

int lw_set_nonblocking(int fd, int on) {
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0) return -errno;
  flags = on ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK);
  if (fcntl(fd, F_SETFL, flags) != 0) return -errno;
  if (fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) return -errno;
  return 0;
}

ssize_t lw_send_with_fds(int sock, const void *buf, size_t len, const int *fds, int nfds) {
  if (nfds < 0 || nfds > LW_MAX_FDS_PER_FRAME) return -EINVAL;
  struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
  struct msghdr msg;
  memset(&msg, 0, sizeof(msg));
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  union {
    char buf[CMSG_SPACE(sizeof(int) * LW_MAX_FDS_PER_FRAME)];
    struct cmsghdr align;
  } control;
  if (nfds > 0) {
    memset(&control, 0, sizeof(control));
    msg.msg_control = control.buf;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
    struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
    memcpy(CMSG_DATA(cmsg), fds, sizeof(int) * nfds);
  }
  ssize_t n = sendmsg(sock, &msg, MSG_NOSIGNAL);
  return n >= 0 ? n : -errno;
}

ssize_t lw_recv_with_fds(int sock, void *buf, size_t len, int *fds, int max_fds, int *nfds, int *truncated) {
  *nfds = 0;
  *truncated = 0;
  struct iovec iov = {.iov_base = buf, .iov_len = len};
  struct msghdr msg;
  memset(&msg, 0, sizeof(msg));
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  union {
    char buf[CMSG_SPACE(sizeof(int) * LW_MAX_FDS_PER_FRAME)];
    struct cmsghdr align;
  } control;
  msg.msg_control = control.buf;
  msg.msg_controllen = sizeof(control.buf);
  ssize_t n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
  if (n < 0) return -errno;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    const unsigned char *data = CMSG_DATA(c);
    for (size_t i = 0; i < count; i++) {
      int fd;
      memcpy(&fd, data + i * sizeof(int), sizeof(int));
      if (*nfds < max_fds) {
        fds[(*nfds)++] = fd;
      } else {
        close(fd);
        *truncated = 1;
      }
    }
  }
  if (msg.msg_flags & MSG_CTRUNC) *truncated = 1;
  return n;
}

int lw_peer_credentials(int sock, int32_t *pid, uint32_t *uid, uint32_t *gid) {
  struct ucred cred;
  socklen_t len = sizeof(cred);
  if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return -errno;
  *pid = (int32_t)cred.pid;
  *uid = (uint32_t)cred.uid;
  *gid = (uint32_t)cred.gid;
  return 0;
}

static uint32_t epoll_bits(unsigned interest) {
  return (interest & LW_EV_IN ? EPOLLIN | EPOLLRDHUP : 0) | (interest & LW_EV_OUT ? EPOLLOUT : 0);
}

int lw_epoll_create(void) {
  int ep = epoll_create1(EPOLL_CLOEXEC);
  return ep >= 0 ? ep : -errno;
}

int lw_epoll_watch(int ep, int fd, unsigned interest, int add) {
  struct epoll_event ev;
  memset(&ev, 0, sizeof ev);
  ev.events = epoll_bits(interest);
  ev.data.fd = fd;
  return epoll_ctl(ep, add ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, fd, &ev) == 0 ? 0 : -errno;
}

int lw_epoll_forget(int ep, int fd) {
  struct epoll_event ev;
  memset(&ev, 0, sizeof ev);
  return epoll_ctl(ep, EPOLL_CTL_DEL, fd, &ev) == 0 ? 0 : -errno;
}

int lw_epoll_wait(int ep, int *fds, unsigned *events, int max, int timeout_ms) {
  struct epoll_event evs[64];
  if (max > 64) max = 64;
  int n = epoll_wait(ep, evs, max, timeout_ms);
  if (n < 0) return -errno;
  for (int i = 0; i < n; i++) {
    uint32_t e = evs[i].events;
    fds[i] = evs[i].data.fd;
    events[i] = (e & EPOLLIN ? LW_EV_IN : 0) | (e & EPOLLOUT ? LW_EV_OUT : 0) |
                (e & (EPOLLHUP | EPOLLRDHUP) ? LW_EV_HUP : 0) | (e & EPOLLERR ? LW_EV_ERR : 0);
  }
  return n;
}

long lw_raise_fd_limit(long want) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return -errno;
  rlim_t target = (rlim_t)want;
  if (rl.rlim_max != RLIM_INFINITY && target > rl.rlim_max) target = rl.rlim_max;
  if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < target) {
    rlim_t old = rl.rlim_cur;
    rl.rlim_cur = target;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) rl.rlim_cur = old;
  }
  return rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > (rlim_t)0x7fffffff ? 0x7fffffff : (long)rl.rlim_cur;
}

int lw_open_reserve_fd(void) {
  int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  return fd >= 0 ? fd : -errno;
}

int lw_release_free_memory(void) { return malloc_trim(0); }

int lw_datagram_send(const char *path, const void *bytes, size_t count) {
  struct sockaddr_un addr;
  int r = fill_address(&addr, path);
  if (r < 0) return r;
  static int fd = -1;
  if (fd < 0) {
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
  }
  for (;;) {
    if (sendto(fd, bytes, count, MSG_NOSIGNAL, (struct sockaddr *)&addr, sizeof(addr)) >= 0) return 0;
    if (errno != EINTR) return -errno;
  }
}

#include <netdb.h>
#include <netinet/in.h>
#include <arpa/inet.h>

int lw_tcp_listen_loopback(const char *host, int port, int backlog) {
  struct addrinfo hints, *res = NULL;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  char service[16];
  if (port < 1 || port > 65535) return -EINVAL;
  snprintf(service, sizeof service, "%d", port);
  int r = getaddrinfo(host, service, &hints, &res);
  if (r != 0 || res == NULL) return -EADDRNOTAVAIL;
  int loopback = 0;
  if (res->ai_family == AF_INET) {
    struct sockaddr_in *a = (struct sockaddr_in *)res->ai_addr;
    loopback = (ntohl(a->sin_addr.s_addr) >> 24) == 127;
  } else if (res->ai_family == AF_INET6) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)res->ai_addr;
    loopback = IN6_IS_ADDR_LOOPBACK(&a->sin6_addr);
  }
  if (!loopback) {
    freeaddrinfo(res);
    return -EPERM;
  }
  int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    int e = errno;
    freeaddrinfo(res);
    return -e;
  }
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, backlog) != 0) {
    int e = errno;
    close(fd);
    freeaddrinfo(res);
    return -e;
  }
  freeaddrinfo(res);
  return fd;
}

int lw_is_tcp_listener(int fd) {
  int type = 0, listening = 0, domain = 0;
  socklen_t n = sizeof type;
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &n) != 0 || type != SOCK_STREAM) return 0;
  n = sizeof listening;
  if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &n) != 0 || !listening) return 0;
  n = sizeof domain;
  if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &n) != 0) return 0;
  return domain == AF_INET || domain == AF_INET6;
}
