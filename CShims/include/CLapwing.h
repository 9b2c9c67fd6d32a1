// Umbrella header of the C shim target. Each subsystem has one thin header with the
// `lw_` prefix; C lives here only where Swift cannot do the job (macros, Linux-only
// calls, dlopen of OpenBLAS before its constructor reads the environment, dlopen of Open MPI
// and its handles, the fork path,
// and the shared-memory layout that C and Swift must agree on byte for byte).
// C functions return -errno on failure instead of leaving it in a global.
#pragma once
#include "lapwing_blas.h"
#include "lapwing_gz.h"
#include "lapwing_hwloc.h"
#include "lapwing_numa.h"
#include "lapwing_shm.h"
#include "lapwing_layout.h"
#include "lapwing_mpi.h"
#include "lapwing_proc.h"
#include "lapwing_sock.h"
#include "lapwing_sync.h"
