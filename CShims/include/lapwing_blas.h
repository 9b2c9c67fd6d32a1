// OpenBLAS, loaded at run time.
//
// Why C: OpenBLAS reads OPENBLAS_CORETYPE and OPENBLAS_NUM_THREADS in a library
// constructor, before main() when linked normally. Lapwing picks the kernel set from the
// CPU's feature flags (virtual machines hide the CPU model, so OpenBLAS's own pick falls
// back to generic SSE3 code) and must keep BLAS to one thread per process, so it sets the
// environment first and dlopen()s the library afterwards. dlopen/dlsym/dlclose are the
// Linux-only calls wrapped here; Swift calls sgemm through lw_sgemm.
#pragma once
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Loads libopenblas.so.0 with the given core type (NULL: OpenBLAS's own choice) and
/// BLAS thread count set in the environment first. Returns 0, or -1 with a message in err.
/// Loading again first unloads the previous copy (dlclose) so that its constructor reruns.
int lw_blas_load(const char *coretype, int threads, char *err, size_t errlen);

/// 1 when a BLAS is loaded.
int lw_blas_loaded(void);

/// The kernel set OpenBLAS runs ("Haswell", "Prescott", ...), or "" when none is loaded.
const char *lw_blas_corename(void);

/// OpenBLAS's build configuration string, or "".
const char *lw_blas_config(void);

/// Number of threads OpenBLAS will use.
int lw_blas_threads(void);

/// Row-major single-precision GEMM: C = alpha * op(A) * op(B) + beta * C, where op(X) is X
/// or its transpose (transA/transB nonzero). M x K times K x N. The corresponding CBLAS
/// function is cblas_sgemm(CblasRowMajor, ...).
void lw_sgemm(int transA, int transB, int m, int n, int k, float alpha, const float *a, int lda,
              const float *b, int ldb, float beta, float *c, int ldc);

#ifdef __cplusplus
}
#endif
