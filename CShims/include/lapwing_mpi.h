// Open MPI, loaded at run time, for the machine level (`lapwing run --mpi`).
//
// Why C: MPI is a C API whose handles (MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM...) are macros. In
// Open MPI each is the address of an exported object (ompi_mpi_comm_world, ompi_mpi_float,
// ompi_mpi_op_sum...), so after dlopen() dlsym() resolves them. Loading at run time keeps
// `lapwing` free of a link dependency on libmpi: it builds and runs where MPI is absent, and
// only `--mpi` needs libmpi.so.40 (Debian: libopenmpi3; the ABI of Open MPI 4 and 5).
// MPICH's handles are integers, not symbols: it is not supported.
// Every function returns 0 or a negative value with a message in err (MPI's own error string).
#pragma once
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Whether libmpi can be loaded (dlopen, then dlclose; MPI is not initialised): 0, or -1 with err.
int lw_mpi_probe(char *err, size_t errlen);

/// Loads libmpi (RTLD_GLOBAL: Open MPI's components, which it dlopens itself, need its
/// symbols), resolves the calls and handles below, calls MPI_Init_thread(MPI_THREAD_SINGLE)
/// and makes errors on MPI_COMM_WORLD return instead of aborting. Returns 0, or -1 with err.
int lw_mpi_init(char *err, size_t errlen);

/// After a singleton lw_mpi_init (no launcher), forms one communicator with the job's other
/// `n` - 1 processes, which call it too: processes that started on their own, each with
/// OMPI_MCA_pmix_server_uri naming one ompi-server. Newcomer k (k = `me` > 0) looks up the
/// port that the group of ranks 0..k-1 published as NAME-k (until `timeout` seconds), connects,
/// and the group accepts it (MPI_Comm_accept, MPI_Intercomm_merge), so that it becomes rank k;
/// then it takes part in accepting k+1 ... n-1. The collectives below then run over that
/// communicator. Returns 0, -2 when the lookup timed out, or -1 with err.
int lw_mpi_form(int me, int n, const char *name, double timeout, char *err, size_t errlen);

/// This process's rank in MPI_COMM_WORLD and the world's size (after lw_mpi_init).
int lw_mpi_rank(void);
int lw_mpi_size(void);

/// Starts a non-blocking all-reduce over the job's communicator (in place: `values` holds this rank's
/// contribution and, once lw_mpi_test says so, the result): the sum of `count` floats
/// (MPI_Iallreduce with MPI_FLOAT, MPI_SUM) or the maximum of `count` int64 (MPI_INT64_T,
/// MPI_MAX). Only one may be in flight. Returns 0 or -1 with err.
int lw_mpi_start_sum_float(float *values, int count, char *err, size_t errlen);
int lw_mpi_start_max_int64(int64_t *values, int count, char *err, size_t errlen);

/// Starts a non-blocking all-gather over the job's communicator (in place): of one int per rank into
/// `values[rank]` (MPI_Iallgather, MPI_INT), or of `counts[k]` bytes per rank k at `base +
/// displs[k]` (MPI_Iallgatherv, MPI_BYTE; this rank's bytes are already at its place).
int lw_mpi_start_gather_int(int *values, char *err, size_t errlen);
int lw_mpi_start_gather_bytes(void *base, const int *counts, const int *displs, char *err, size_t errlen);

/// Whether the reduction in flight has completed (MPI_Test): 1 done, 0 not yet, -1 error.
int lw_mpi_test(char *err, size_t errlen);

/// MPI_Finalize.
int lw_mpi_finalize(void);

/// MPI_Abort(MPI_COMM_WORLD, code): ends every rank of the job.
void lw_mpi_abort(int code);

#ifdef __cplusplus
}
#endif
