#define _GNU_SOURCE
#include "lapwing_blas.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { ROW_MAJOR = 101, NO_TRANS = 111, TRANS = 112 };

typedef void (*sgemm_fn)(int, int, int, int, int, int, float, const float *, int, const float *, int,
                         float, float *, int);
typedef char *(*str_fn)(void);
typedef void (*set_threads_fn)(int);
typedef int (*get_threads_fn)(void);

static void *handle;
static sgemm_fn sgemm;
static str_fn corename, config;
static get_threads_fn get_threads;

static void unload(void) {
    if (handle) dlclose(handle);
    handle = NULL;
    sgemm = NULL;
    corename = config = NULL;
    get_threads = NULL;
}

int lw_blas_load(const char *coretype, int threads, char *err, size_t errlen) {
    unload();
    if (coretype && *coretype) setenv("OPENBLAS_CORETYPE", coretype, 1);
    else unsetenv("OPENBLAS_CORETYPE");
    char n[16];
    snprintf(n, sizeof n, "%d", threads > 0 ? threads : 1);
    setenv("OPENBLAS_NUM_THREADS", n, 1);
    setenv("OPENBLAS_VERBOSE", "0", 1);

    const char *names[] = {"libopenblas.so.0", "libopenblas.so"};
    for (size_t i = 0; i < sizeof names / sizeof *names && !handle; i++)
        handle = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        snprintf(err, errlen, "dlopen libopenblas.so.0: %s", dlerror());
        return -1;
    }
    sgemm = (sgemm_fn)dlsym(handle, "cblas_sgemm");
    corename = (str_fn)dlsym(handle, "openblas_get_corename");
    config = (str_fn)dlsym(handle, "openblas_get_config");
    get_threads = (get_threads_fn)dlsym(handle, "openblas_get_num_threads");
    set_threads_fn set_threads = (set_threads_fn)dlsym(handle, "openblas_set_num_threads");
    if (!sgemm) {
        snprintf(err, errlen, "libopenblas.so.0 has no cblas_sgemm");
        unload();
        return -1;
    }
    if (set_threads) set_threads(threads > 0 ? threads : 1);
    return 0;
}

int lw_blas_loaded(void) { return sgemm != NULL; }
const char *lw_blas_corename(void) { return corename ? corename() : ""; }
const char *lw_blas_config(void) { return config ? config() : ""; }
int lw_blas_threads(void) { return get_threads ? get_threads() : 0; }

void lw_sgemm(int transA, int transB, int m, int n, int k, float alpha, const float *a, int lda,
              const float *b, int ldb, float beta, float *c, int ldc) {
    sgemm(ROW_MAJOR, transA ? TRANS : NO_TRANS, transB ? TRANS : NO_TRANS, m, n, k, alpha, a, lda, b,
          ldb, beta, c, ldc);
}
