#pragma once
// Topology discovery (hwloc 2) and CPU affinity for LapwingTopology.
// Swift reads hwloc objects directly through <hwloc.h>; the functions here exist only where a
// header cannot do the job: multi-step hwloc setup that must unwind on failure and report -errno,
// and the CPU_SET family, which are macros Swift cannot import.
// Every function returns >= 0 on success and -errno on failure.
#include <hwloc.h>

/// Initializes and loads a synthetic topology ("pack:2 numa:2 core:8 pu:2") into *out.
/// Exists because init, set_synthetic and load must be unwound together and hwloc reports
/// through errno; a malformed description gives -EINVAL.
int lw_hwloc_load_synthetic(const char *description, hwloc_topology_t *out);

/// Initializes and loads a topology from an XML file written by hwloc (lstopo foo.xml) into *out.
/// Exists for the same reason as lw_hwloc_load_synthetic.
int lw_hwloc_load_xml(const char *path, hwloc_topology_t *out);

/// Loads this machine's topology into *out, restricted to what the process may use: hwloc's
/// default already drops CPUs and memory nodes that cgroups disallow; this also intersects with
/// the calling thread's affinity (sched_getaffinity, as set by taskset), which hwloc ignores.
/// Memory nodes left without CPUs are kept (their memory is still usable).
int lw_hwloc_load_current(hwloc_topology_t *out);

/// Writes the topology as hwloc XML to path. Exists to return -errno like the rest.
int lw_hwloc_export_xml(hwloc_topology_t topology, const char *path);

/// Writes up to cap CPU (OS PU) indices of the calling thread's affinity mask, ascending, to cpus
/// and returns how many CPUs the mask holds (which may exceed cap). Exists because CPU_ISSET and
/// CPU_ALLOC are macros; the mask is sized dynamically, so machines with more than 1024 CPUs work.
int lw_affinity_get(int *cpus, int cap);

/// Pins the calling thread to one CPU with sched_setaffinity(0, ...). Lapwing's workers and
/// averager are single-threaded processes (design section 2), so this pins the process.
/// Exists because CPU_SET is a macro.
int lw_affinity_set_one(int cpu);
