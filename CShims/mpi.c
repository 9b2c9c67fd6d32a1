#define _GNU_SOURCE
#include "lapwing_mpi.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

// Open MPI's handles are pointers to its predefined objects; these calls take them as void *.
typedef void *handle_t;
typedef int (*init_thread_fn)(int *, char ***, int, int *);
typedef int (*comm_int_fn)(handle_t, int *);
typedef int (*iallreduce_fn)(const void *, void *, int, handle_t, handle_t, handle_t, handle_t *);
typedef int (*iallgather_fn)(const void *, int, handle_t, void *, int, handle_t, handle_t, handle_t *);
typedef int (*iallgatherv_fn)(const void *, int, handle_t, void *, const int *, const int *, handle_t, handle_t, handle_t *);
typedef int (*test_fn)(handle_t *, int *, void *);
typedef int (*void_fn)(void);
typedef int (*abort_fn)(handle_t, int);
typedef int (*set_errhandler_fn)(handle_t, handle_t);
typedef int (*error_string_fn)(int, char *, int *);
typedef int (*open_port_fn)(handle_t, char *);
typedef int (*close_port_fn)(const char *);
typedef int (*connect_fn)(const char *, handle_t, int, handle_t, handle_t *);
typedef int (*merge_fn)(handle_t, int, handle_t *);
typedef int (*comm_free_fn)(handle_t *);
typedef int (*name_fn)(const char *, handle_t, char *);

static void *lib;
static struct {
    init_thread_fn init_thread;
    comm_int_fn comm_rank, comm_size;
    iallreduce_fn iallreduce;
    iallgather_fn iallgather;
    iallgatherv_fn iallgatherv;
    test_fn test;
    void_fn finalize;
    abort_fn abort;
    set_errhandler_fn set_errhandler;
    error_string_fn error_string;
    open_port_fn open_port;
    close_port_fn close_port;
    connect_fn accept, connect;
    merge_fn merge;
    comm_free_fn comm_free;
    name_fn publish, unpublish, lookup;
} mpi;
// `comm`: the communicator of every collective: MPI_COMM_WORLD, or the one lw_mpi_form made.
static handle_t comm, self, info_null;
static handle_t world, float_type, int64_type, int_type, byte_type, op_sum, op_max, errors_return;
static handle_t request;  // the reduction in flight (MPI_Request), NULL when none
static int rank = -1, size = 0;

// MPI_IN_PLACE is ((void *) 1) in Open MPI's mpi.h.
#define LW_MPI_IN_PLACE ((void *)1)
// MPI_THREAD_SINGLE, MPI_SUCCESS.
enum { THREAD_SINGLE = 0, SUCCESS = 0, MAX_ERROR_STRING = 256 };

static int fail(int rc, const char *call, char *err, size_t errlen) {
    char text[MAX_ERROR_STRING] = "";
    int len = 0;
    if (mpi.error_string) mpi.error_string(rc, text, &len);
    snprintf(err, errlen, "%s: %s (MPI error %d)", call, text[0] ? text : "failed", rc);
    return -1;
}

static void *need(const char *name, int *missing, char *err, size_t errlen) {
    void *p = dlsym(lib, name);
    if (!p && !*missing) {
        snprintf(err, errlen, "libmpi.so.40 has no %s (Lapwing needs Open MPI 4 or 5)", name);
        *missing = 1;
    }
    return p;
}

static const char *const names[] = {"libmpi.so.40", "libmpi.so"};

static void *open_libmpi(int flags, char *err, size_t errlen) {
    void *h = NULL;
    for (size_t i = 0; i < sizeof names / sizeof *names && !h; i++) h = dlopen(names[i], flags);
    if (!h) snprintf(err, errlen, "dlopen libmpi.so.40: %s (install Open MPI: apt-get install openmpi-bin)", dlerror());
    return h;
}

int lw_mpi_probe(char *err, size_t errlen) {
    void *h = open_libmpi(RTLD_LAZY | RTLD_LOCAL, err, errlen);
    if (!h) return -1;
    dlclose(h);
    return 0;
}

int lw_mpi_init(char *err, size_t errlen) {
    if (rank >= 0) return 0;
    if (!lib && !(lib = open_libmpi(RTLD_NOW | RTLD_GLOBAL, err, errlen))) return -1;
    int missing = 0;
    mpi.init_thread = (init_thread_fn)need("MPI_Init_thread", &missing, err, errlen);
    mpi.comm_rank = (comm_int_fn)need("MPI_Comm_rank", &missing, err, errlen);
    mpi.comm_size = (comm_int_fn)need("MPI_Comm_size", &missing, err, errlen);
    mpi.iallreduce = (iallreduce_fn)need("MPI_Iallreduce", &missing, err, errlen);
    mpi.iallgather = (iallgather_fn)need("MPI_Iallgather", &missing, err, errlen);
    mpi.iallgatherv = (iallgatherv_fn)need("MPI_Iallgatherv", &missing, err, errlen);
    mpi.test = (test_fn)need("MPI_Test", &missing, err, errlen);
    mpi.finalize = (void_fn)need("MPI_Finalize", &missing, err, errlen);
    mpi.abort = (abort_fn)need("MPI_Abort", &missing, err, errlen);
    mpi.set_errhandler = (set_errhandler_fn)need("MPI_Comm_set_errhandler", &missing, err, errlen);
    mpi.error_string = (error_string_fn)need("MPI_Error_string", &missing, err, errlen);
    world = need("ompi_mpi_comm_world", &missing, err, errlen);
    float_type = need("ompi_mpi_float", &missing, err, errlen);
    int64_type = need("ompi_mpi_int64_t", &missing, err, errlen);
    int_type = need("ompi_mpi_int", &missing, err, errlen);
    byte_type = need("ompi_mpi_byte", &missing, err, errlen);
    op_sum = need("ompi_mpi_op_sum", &missing, err, errlen);
    op_max = need("ompi_mpi_op_max", &missing, err, errlen);
    errors_return = need("ompi_mpi_errors_return", &missing, err, errlen);
    mpi.open_port = (open_port_fn)need("MPI_Open_port", &missing, err, errlen);
    mpi.close_port = (close_port_fn)need("MPI_Close_port", &missing, err, errlen);
    mpi.accept = (connect_fn)need("MPI_Comm_accept", &missing, err, errlen);
    mpi.connect = (connect_fn)need("MPI_Comm_connect", &missing, err, errlen);
    mpi.merge = (merge_fn)need("MPI_Intercomm_merge", &missing, err, errlen);
    mpi.comm_free = (comm_free_fn)need("MPI_Comm_free", &missing, err, errlen);
    mpi.publish = (name_fn)need("MPI_Publish_name", &missing, err, errlen);
    mpi.unpublish = (name_fn)need("MPI_Unpublish_name", &missing, err, errlen);
    mpi.lookup = (name_fn)need("MPI_Lookup_name", &missing, err, errlen);
    self = need("ompi_mpi_comm_self", &missing, err, errlen);
    info_null = need("ompi_mpi_info_null", &missing, err, errlen);
    if (missing) return -1;
    comm = world;
    int provided = 0;
    int rc = mpi.init_thread(NULL, NULL, THREAD_SINGLE, &provided);
    if (rc != SUCCESS) return fail(rc, "MPI_Init_thread", err, errlen);
    rc = mpi.set_errhandler(world, errors_return);
    if (rc == SUCCESS) rc = mpi.set_errhandler(self, errors_return);
    if (rc != SUCCESS) return fail(rc, "MPI_Comm_set_errhandler", err, errlen);
    int r = -1, s = 0;
    if ((rc = mpi.comm_rank(world, &r)) != SUCCESS) return fail(rc, "MPI_Comm_rank", err, errlen);
    if ((rc = mpi.comm_size(world, &s)) != SUCCESS) return fail(rc, "MPI_Comm_size", err, errlen);
    rank = r;
    size = s;
    return 0;
}

int lw_mpi_rank(void) { return rank; }
int lw_mpi_size(void) { return size; }

static int busy(const char *what, char *err, size_t errlen) {
    if (rank >= 0 && !request) return 0;
    snprintf(err, errlen, "%s: %s", what, rank < 0 ? "MPI is not initialised" : "a reduction is already in flight");
    return -1;
}

static int started(int rc, const char *what, char *err, size_t errlen) {
    if (rc == SUCCESS) return 0;
    request = NULL;
    return fail(rc, what, err, errlen);
}

int lw_mpi_start_gather_int(int *values, char *err, size_t errlen) {
    const char *what = "MPI_Iallgather(MPI_INT)";
    if (busy(what, err, errlen)) return -1;
    return started(mpi.iallgather(LW_MPI_IN_PLACE, 0, int_type, values, 1, int_type, comm, &request), what, err, errlen);
}

int lw_mpi_start_gather_bytes(void *base, const int *counts, const int *displs, char *err, size_t errlen) {
    const char *what = "MPI_Iallgatherv(MPI_BYTE)";
    if (busy(what, err, errlen)) return -1;
    return started(mpi.iallgatherv(LW_MPI_IN_PLACE, 0, byte_type, base, counts, displs, byte_type, comm, &request), what, err,
                   errlen);
}

static int start(void *values, int count, handle_t type, handle_t op, const char *what, char *err, size_t errlen) {
    if (busy(what, err, errlen)) return -1;
    return started(mpi.iallreduce(LW_MPI_IN_PLACE, values, count, type, op, comm, &request), what, err, errlen);
}

int lw_mpi_start_sum_float(float *values, int count, char *err, size_t errlen) {
    return start(values, count, float_type, op_sum, "MPI_Iallreduce(MPI_FLOAT, MPI_SUM)", err, errlen);
}

int lw_mpi_start_max_int64(int64_t *values, int count, char *err, size_t errlen) {
    return start(values, count, int64_type, op_max, "MPI_Iallreduce(MPI_INT64_T, MPI_MAX)", err, errlen);
}

int lw_mpi_test(char *err, size_t errlen) {
    if (!request) return 1;
    int done = 0;
    int rc = mpi.test(&request, &done, NULL);  // NULL is MPI_STATUS_IGNORE
    if (rc != SUCCESS) {
        request = NULL;
        return fail(rc, "MPI_Test", err, errlen);
    }
    if (done) request = NULL;  // MPI_Test freed it (MPI_REQUEST_NULL)
    return done ? 1 : 0;
}

int lw_mpi_finalize(void) {
    if (rank < 0) return 0;
    rank = -1;
    return mpi.finalize() == SUCCESS ? 0 : -1;
}

void lw_mpi_abort(int code) {
    if (mpi.abort && comm) mpi.abort(comm, code);
}

static double seconds_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

// The port of newcomer k is published as NAME-k; newcomer k waits for it with lookups.
enum { PORT_NAME = 1024, SERVICE_NAME = 320 };

int lw_mpi_form(int me, int n, const char *name, double timeout, char *err, size_t errlen) {
    if (rank < 0 || comm != world || size != 1) {
        snprintf(err, errlen, "lw_mpi_form: needs a fresh singleton MPI_Init");
        return -1;
    }
    if (me < 0 || me >= n || strlen(name) > SERVICE_NAME - 16) {
        snprintf(err, errlen, "lw_mpi_form: rank %d of %d, name of %zu bytes", me, n, strlen(name));
        return -1;
    }
    char port[PORT_NAME] = "", service[SERVICE_NAME];
    handle_t group = self, inter = NULL, merged = NULL;
    int rc;
    if (me > 0) {
        snprintf(service, sizeof service, "%s-%d", name, me);
        double deadline = seconds_now() + timeout;
        while ((rc = mpi.lookup(service, info_null, port)) != SUCCESS) {
            if (seconds_now() > deadline) {
                snprintf(err, errlen, "MPI_Lookup_name(%s): rank 0 did not publish it within %.0f s", service, timeout);
                return -2;
            }
            usleep(50000);
        }
        if ((rc = mpi.connect(port, info_null, 0, self, &inter)) != SUCCESS) return fail(rc, "MPI_Comm_connect", err, errlen);
        if ((rc = mpi.merge(inter, 1, &group)) != SUCCESS) return fail(rc, "MPI_Intercomm_merge", err, errlen);
        mpi.comm_free(&inter);
    }
    // The group so far accepts newcomers k = me+1 ... n-1, in order: newcomer k becomes rank k.
    for (int k = me + 1; k < n; k++) {
        int r = -1;
        if ((rc = mpi.comm_rank(group, &r)) != SUCCESS) return fail(rc, "MPI_Comm_rank", err, errlen);
        if (r == 0) {
            if ((rc = mpi.open_port(info_null, port)) != SUCCESS) return fail(rc, "MPI_Open_port", err, errlen);
            snprintf(service, sizeof service, "%s-%d", name, k);
            if ((rc = mpi.publish(service, info_null, port)) != SUCCESS) return fail(rc, "MPI_Publish_name", err, errlen);
        }
        if ((rc = mpi.accept(port, info_null, 0, group, &inter)) != SUCCESS) return fail(rc, "MPI_Comm_accept", err, errlen);
        if (r == 0) {
            mpi.unpublish(service, info_null, port);
            mpi.close_port(port);
        }
        if ((rc = mpi.merge(inter, 0, &merged)) != SUCCESS) return fail(rc, "MPI_Intercomm_merge", err, errlen);
        mpi.comm_free(&inter);
        if (group != self) mpi.comm_free(&group);
        group = merged;
    }
    if ((rc = mpi.set_errhandler(group, errors_return)) != SUCCESS) return fail(rc, "MPI_Comm_set_errhandler", err, errlen);
    int r = -1, s = 0;
    if ((rc = mpi.comm_rank(group, &r)) != SUCCESS) return fail(rc, "MPI_Comm_rank", err, errlen);
    if ((rc = mpi.comm_size(group, &s)) != SUCCESS) return fail(rc, "MPI_Comm_size", err, errlen);
    comm = group;
    rank = r;
    size = s;
    return 0;
}
