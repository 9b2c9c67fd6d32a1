// See include/lapwing_numa.h.
#define _GNU_SOURCE
#include "lapwing_numa.h"

#include <errno.h>
#include <numa.h>
#include <numaif.h>
#include <string.h>

int lw_numa_available(void) { return numa_available() < 0 ? -ENOSYS : 0; }

int lw_numa_max_node(void) { return numa_available() < 0 ? -ENOSYS : numa_max_node(); }

int lw_numa_node_usable(int node) {
  if (node < 0 || numa_available() < 0 || node > numa_max_node()) return 0;
  return numa_bitmask_isbitset(numa_all_nodes_ptr, (unsigned int)node) ? 1 : 0;
}

int lw_numa_bind(void *addr, size_t len, int node, int flags) {
  enum { WORDS = 16, BITS = WORDS * 8 * (int)sizeof(unsigned long) };  // up to 1024 nodes
  if (node < 0 || node >= BITS) return -EINVAL;
  unsigned long mask[WORDS];
  memset(mask, 0, sizeof mask);
  mask[node / (8 * sizeof(unsigned long))] |= 1UL << (node % (8 * sizeof(unsigned long)));
  unsigned mf = 0;
  if (flags & LW_MBIND_STRICT) mf |= MPOL_MF_STRICT;
  if (flags & LW_MBIND_MOVE) mf |= MPOL_MF_MOVE;
  // The kernel reads maxnode - 1 bits, hence the + 1.
  if (mbind(addr, len, MPOL_BIND, mask, BITS + 1, mf) != 0) return -errno;
  return 0;
}

int lw_numa_node_of_address(const void *addr) {
  int node = -1;
  if (get_mempolicy(&node, NULL, 0, (void *)addr, MPOL_F_NODE | MPOL_F_ADDR) != 0) return -errno;
  return node;
}

int lw_numa_query_pages(unsigned long count, void **pages, int *status) {
  if (move_pages(0, count, pages, NULL, status, 0) < 0) return -errno;
  return 0;
}

int lw_numa_node_free(int node, int64_t *free_bytes) {
  if (numa_available() < 0) return -ENOSYS;
  long long free = 0;
  if (numa_node_size64(node, &free) < 0) return -EINVAL;
  *free_bytes = (int64_t)free;
  return 0;
}
