// Topology discovery and CPU affinity shims: see lapwing_hwloc.h for why each exists.
#define _GNU_SOURCE
#include "lapwing_hwloc.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>

// errno after a failed hwloc call, never 0 (hwloc does not always set it).
static int lw_err(void) { return errno > 0 ? errno : EINVAL; }

// The shared tail of the loaders: load, or destroy and return -errno.
static int lw_hwloc_finish(hwloc_topology_t topology, int setup_result, hwloc_topology_t *out) {
  if (setup_result == 0 && hwloc_topology_load(topology) == 0) {
    *out = topology;
    return 0;
  }
  int err = lw_err();
  hwloc_topology_destroy(topology);
  return -err;
}

int lw_hwloc_load_synthetic(const char *description, hwloc_topology_t *out) {
  hwloc_topology_t topology;
  if (hwloc_topology_init(&topology) != 0) return -lw_err();
  errno = 0;
  return lw_hwloc_finish(topology, hwloc_topology_set_synthetic(topology, description), out);
}

int lw_hwloc_load_xml(const char *path, hwloc_topology_t *out) {
  hwloc_topology_t topology;
  if (hwloc_topology_init(&topology) != 0) return -lw_err();
  errno = 0;
  return lw_hwloc_finish(topology, hwloc_topology_set_xml(topology, path), out);
}

int lw_hwloc_load_current(hwloc_topology_t *out) {
  hwloc_topology_t topology;
  if (hwloc_topology_init(&topology) != 0) return -lw_err();
  if (hwloc_topology_load(topology) != 0) {
    int err = lw_err();
    hwloc_topology_destroy(topology);
    return -err;
  }
  hwloc_bitmap_t set = hwloc_bitmap_alloc();
  if (set == NULL) {
    hwloc_topology_destroy(topology);
    return -ENOMEM;
  }
  int result = 0;
  if (hwloc_get_cpubind(topology, set, HWLOC_CPUBIND_THREAD) != 0) {
    result = -lw_err();
  } else {
    hwloc_bitmap_and(set, set, hwloc_topology_get_topology_cpuset(topology));
    if (hwloc_bitmap_iszero(set)) {
      result = -EINVAL;  // affinity holds no CPU of this topology
    } else if (!hwloc_bitmap_isequal(set, hwloc_topology_get_topology_cpuset(topology)) &&
               hwloc_topology_restrict(topology, set, 0) != 0) {
      result = -lw_err();
    }
  }
  hwloc_bitmap_free(set);
  if (result < 0) {
    hwloc_topology_destroy(topology);
    return result;
  }
  *out = topology;
  return 0;
}

int lw_hwloc_export_xml(hwloc_topology_t topology, const char *path) {
  errno = 0;
  if (hwloc_topology_export_xml(topology, path, 0) != 0) return -lw_err();
  return 0;
}

// A dynamically sized mask holding the calling thread's affinity; NULL with errno on failure.
static cpu_set_t *lw_affinity_mask(size_t *size_out) {
  for (int ncpus = 1024; ncpus <= (1 << 20); ncpus *= 2) {
    cpu_set_t *mask = CPU_ALLOC(ncpus);
    if (mask == NULL) return NULL;
    size_t size = CPU_ALLOC_SIZE(ncpus);
    CPU_ZERO_S(size, mask);
    if (sched_getaffinity(0, size, mask) == 0) {
      *size_out = size;
      return mask;
    }
    int err = errno;
    CPU_FREE(mask);
    if (err != EINVAL) {
      errno = err;
      return NULL;
    }
  }
  errno = EINVAL;
  return NULL;
}

int lw_affinity_get(int *cpus, int cap) {
  size_t size = 0;
  cpu_set_t *mask = lw_affinity_mask(&size);
  if (mask == NULL) return -errno;
  int count = 0;
  for (size_t cpu = 0; cpu < size * 8; cpu++) {
    if (!CPU_ISSET_S(cpu, size, mask)) continue;
    if (count < cap) cpus[count] = (int)cpu;
    count++;
  }
  CPU_FREE(mask);
  return count;
}

int lw_affinity_set_one(int cpu) {
  if (cpu < 0) return -EINVAL;
  size_t ncpus = (size_t)cpu + 1;
  cpu_set_t *mask = CPU_ALLOC(ncpus);
  if (mask == NULL) return -ENOMEM;
  size_t size = CPU_ALLOC_SIZE(ncpus);
  CPU_ZERO_S(size, mask);
  CPU_SET_S((size_t)cpu, size, mask);
  int result = sched_setaffinity(0, size, mask) == 0 ? 0 : -errno;
  CPU_FREE(mask);
  return result;
}
