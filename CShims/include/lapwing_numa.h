// NUMA placement of the arena's pages. Why C: numaif.h (libnuma) is not in Glibc's module map,
// mbind takes a bit mask of nodes with an off-by-one maxnode convention, and the libnuma
// wrappers set errno; these give Swift a node number in and a node number (or -errno) out.
#pragma once
#include <stddef.h>
#include <stdint.h>

/// 0 when the kernel supports NUMA policies, else -ENOSYS (numa_available).
int lw_numa_available(void);
/// The highest node number the kernel knows (numa_max_node), or -ENOSYS.
int lw_numa_max_node(void);
/// Whether `node` is a node with memory we may use (numa_bitmask_isbitset on numa_all_nodes_ptr):
/// 1 yes, 0 no.
int lw_numa_node_usable(int node);
/// mbind(addr, len, MPOL_BIND, {node}, ..., flags) where flags is a combination of
/// LW_MBIND_STRICT and LW_MBIND_MOVE. On shared memory the policy is stored with the object,
/// so pages allocated later (posix_fallocate, any process's first touch) follow it.
/// Returns 0 or -errno.
int lw_numa_bind(void *addr, size_t len, int node, int flags);
#define LW_MBIND_STRICT 1
#define LW_MBIND_MOVE 2
/// The node of the page holding addr: get_mempolicy(MPOL_F_NODE | MPOL_F_ADDR), which faults
/// the page in if needed. Returns the node or -errno.
int lw_numa_node_of_address(const void *addr);
/// move_pages(0, count, pages, NULL, status, 0): for each page the node it is on, or -errno
/// in status[i] (-ENOENT: not present in this process). Returns 0 or -errno.
int lw_numa_query_pages(unsigned long count, void **pages, int *status);
/// The free bytes of `node` (numa_node_size64's free figure). Returns 0 and sets *free_bytes,
/// or -errno.
int lw_numa_node_free(int node, int64_t *free_bytes);
