// The layout of a job's shared-memory arena (design section 3), declared once here and
// used by C and Swift alike. Why C: the layout is shared byte for byte between processes
// (and, later, an MPI bridge), so it is fixed by a C ABI with static asserts, not by
// whatever Swift decides for a struct.
//
// The object `/lapwing.<job-id>` (in /dev/shm) holds, in order:
//
//   offset 0                    struct lw_arena_header (256 bytes; the state word has its own line)
//   header.slots_offset         struct lw_slot[slot_count]: W workers, then the averager, then the
//                               job host; 64 bytes each, so no two counters share a cache line
//   header.replicas_offset      struct lw_replica_desc[R]: per replica its node and the offsets of
//                               its V vectors
//   header.barriers_offset      B barriers, barrier_stride bytes apart: each a struct lw_barrier (one
//                               cache line of its own) followed by its arrival log, uint32_t[slot_count]
//                               rounded up to whole cache lines (who counted in the current round)
//   header.exchange_nodes_offset int32_t[W]: the NUMA node of each worker's exchange vectors (-1: none)
//   header.data_offset          the vectors, replica-major: replica r's vector k (k = 0 is the replica
//                               x_r itself, k >= 1 the averager/algorithm state: snapshot s_r, slow
//                               momentum, anchor, ...) is d float32 values at
//                               data_offset + (r * V + k) * vector_stride;
//                               vector_stride = d * 4 rounded up to 2 MiB, so every vector starts on a
//                               2 MiB boundary (and the mapping is 2 MiB aligned too)
//   header.exchange_offset      per-worker exchange vectors, worker-major: worker w's vector k (E per
//                               worker, e.g. the gradient the synchronous algorithms reduce) is d float32
//                               values at exchange_offset + (w * E + k) * vector_stride
//   header.total_size           end
//
// The offsets are computed by `lw_layout_compute` and stored in the header, so an attacher reads
// them instead of recomputing them (it recomputes only to validate).
#pragma once
#include <errno.h>
#include <stddef.h>
#include <stdint.h>

/// "LAPWING\x01" read as a little-endian uint64; written last by the creator (release).
#define LW_ARENA_MAGIC 0x01474e495750414cULL
/// Bumped on any change to this file.
#define LW_LAYOUT_VERSION 2u
/// Room for the job id, NUL included: job ids are 1...LW_JOB_ID_MAX characters of [A-Za-z0-9_-].
#define LW_JOB_ID_CAPACITY 64
#define LW_JOB_ID_MAX (LW_JOB_ID_CAPACITY - 1)
#define LW_CACHE_LINE 64u
/// Alignment of every vector (and of the mapping): one x86-64 huge page.
#define LW_VECTOR_ALIGN 2097152u /* 2 MiB */
/// Vectors per replica, the replica itself included.
#define LW_MAX_VECTORS 7u
/// The most barriers an arena can have.
#define LW_MAX_BARRIERS 4096u
/// The most exchange vectors per worker.
#define LW_MAX_EXCHANGE_VECTORS 7u
/// Slots beyond the W workers: the averager (index W) and the job host (index W + 1).
#define LW_EXTRA_SLOTS 2u

/// The job's state word (header.state): written by the job host with release ordering, read by
/// everyone with acquire ordering.
enum lw_arena_state {
  LW_STATE_READY = 0,    ///< created; workers not started yet
  LW_STATE_RUNNING = 1,
  LW_STATE_PAUSED = 2,
  LW_STATE_STOPPING = 3,
};

/// One process's counters. Each field is accessed atomically (relaxed); a slot is one cache line.
struct lw_slot {
  uint64_t steps;         ///< optimizer steps taken (wrapping)
  uint64_t samples;       ///< training samples consumed (wrapping)
  uint64_t heartbeat_ns;  ///< CLOCK_MONOTONIC of the last sign of life, in ns
  int32_t pid;            ///< the process in this slot, 0 if none
  uint32_t flags;         ///< reserved for the process's own use
  uint64_t aux[4];        ///< the process's own numbers (a worker: its running loss; the averager: bytes, ns)
};

/// Where replica r lives: its NUMA node (-1: not bound) and the byte offsets of its vectors.
struct lw_replica_desc {
  int32_t node;
  uint32_t vector_count;
  uint64_t vector_offset[LW_MAX_VECTORS];
};

/// A cross-process barrier (sense-reversing by round number; see Sources/LapwingArena/ArenaBarrier.swift).
/// Every field is accessed atomically. A round completes when `quorum` of the `participants` have
/// arrived (quorum == participants: a plain barrier; quorum < participants: first N of M).
struct lw_barrier {
  uint64_t state;            ///< (round << 32) | tickets claimed in that round; CAS by arrivers
  uint32_t round;            ///< the current round: the futex word, advanced (release) by the completer
  uint32_t published;        ///< counted arrivals of the current round whose log entry is written
  uint32_t sleepers;         ///< processes in, or about to enter, FUTEX_WAIT on `round`
  uint32_t participants;     ///< M: 1...slot_count
  uint32_t quorum;           ///< N: 1...M
  uint32_t reserved0;
  uint64_t completed;        ///< rounds completed since creation (64-bit: `round` wraps)
  uint64_t late;             ///< arrivals that came after their round had its quorum (dropped)
  uint64_t reserved1[2];
};

/// Offsets and sizes of one arena, as `lw_layout_compute` derives them from (d, R, W, V).
struct lw_layout {
  uint64_t header_size;
  uint64_t slots_offset;
  uint64_t slot_count;
  uint64_t replicas_offset;
  uint64_t barriers_offset;
  uint64_t barrier_count;
  uint64_t barrier_stride;        ///< bytes from one barrier to the next: its line and its log
  uint64_t exchange_nodes_offset;
  uint64_t data_offset;
  uint64_t vector_stride;
  uint64_t exchange_offset;
  uint64_t exchange_vectors;      ///< E: exchange vectors per worker
  uint64_t total_size;
};

struct lw_arena_header {
  uint64_t magic;                    ///< LW_ARENA_MAGIC once the arena is complete
  uint32_t layout_version;           ///< LW_LAYOUT_VERSION
  uint32_t header_size;              ///< sizeof(struct lw_arena_header)
  char job_id[LW_JOB_ID_CAPACITY];   ///< NUL-terminated
  uint64_t param_count;              ///< d: float32 values per vector
  uint32_t replica_count;            ///< R
  uint32_t worker_count;             ///< W
  uint32_t vectors_per_replica;      ///< V (the replica itself included)
  uint32_t slot_count;               ///< W + LW_EXTRA_SLOTS
  uint64_t total_size;               ///< bytes of the whole object
  uint64_t slots_offset;
  uint64_t replicas_offset;
  uint64_t data_offset;
  uint64_t vector_stride;            ///< bytes from one vector to the next (a multiple of 2 MiB)
  int32_t creator_pid;
  uint32_t barrier_count;            ///< B
  uint64_t created_realtime_ns;      ///< CLOCK_REALTIME at creation
  uint64_t barriers_offset;
  uint64_t exchange_nodes_offset;
  uint64_t exchange_offset;
  uint32_t exchange_vectors;         ///< E: exchange vectors per worker
  uint32_t barrier_stride;           ///< bytes from one barrier to the next
  // Second cache line of its own: read by every worker, written rarely by the job host.
  uint32_t state;                    ///< enum lw_arena_state
  uint32_t reserved2[15];
};

_Static_assert(sizeof(struct lw_slot) == 64, "a slot is one cache line");
_Static_assert(offsetof(struct lw_slot, steps) == 0, "slot.steps");
_Static_assert(offsetof(struct lw_slot, samples) == 8, "slot.samples");
_Static_assert(offsetof(struct lw_slot, heartbeat_ns) == 16, "slot.heartbeat_ns");
_Static_assert(offsetof(struct lw_slot, pid) == 24, "slot.pid");
_Static_assert(offsetof(struct lw_slot, flags) == 28, "slot.flags");
_Static_assert(sizeof(struct lw_replica_desc) == 64, "a replica descriptor is one cache line");
_Static_assert(offsetof(struct lw_replica_desc, vector_offset) == 8, "replica.vector_offset");
_Static_assert(sizeof(struct lw_barrier) == LW_CACHE_LINE, "a barrier is one cache line");
_Static_assert(offsetof(struct lw_barrier, state) == 0, "barrier.state");
_Static_assert(offsetof(struct lw_barrier, round) == 8, "barrier.round");
_Static_assert(offsetof(struct lw_barrier, published) == 12, "barrier.published");
_Static_assert(offsetof(struct lw_barrier, sleepers) == 16, "barrier.sleepers");
_Static_assert(offsetof(struct lw_barrier, participants) == 20, "barrier.participants");
_Static_assert(offsetof(struct lw_barrier, quorum) == 24, "barrier.quorum");
_Static_assert(offsetof(struct lw_barrier, completed) == 32, "barrier.completed");
_Static_assert(offsetof(struct lw_barrier, late) == 40, "barrier.late");
_Static_assert(sizeof(struct lw_arena_header) == 256, "header size");
_Static_assert(offsetof(struct lw_arena_header, magic) == 0, "header.magic");
_Static_assert(offsetof(struct lw_arena_header, layout_version) == 8, "header.layout_version");
_Static_assert(offsetof(struct lw_arena_header, header_size) == 12, "header.header_size");
_Static_assert(offsetof(struct lw_arena_header, job_id) == 16, "header.job_id");
_Static_assert(offsetof(struct lw_arena_header, param_count) == 80, "header.param_count");
_Static_assert(offsetof(struct lw_arena_header, replica_count) == 88, "header.replica_count");
_Static_assert(offsetof(struct lw_arena_header, worker_count) == 92, "header.worker_count");
_Static_assert(offsetof(struct lw_arena_header, vectors_per_replica) == 96, "header.vectors_per_replica");
_Static_assert(offsetof(struct lw_arena_header, slot_count) == 100, "header.slot_count");
_Static_assert(offsetof(struct lw_arena_header, total_size) == 104, "header.total_size");
_Static_assert(offsetof(struct lw_arena_header, slots_offset) == 112, "header.slots_offset");
_Static_assert(offsetof(struct lw_arena_header, replicas_offset) == 120, "header.replicas_offset");
_Static_assert(offsetof(struct lw_arena_header, data_offset) == 128, "header.data_offset");
_Static_assert(offsetof(struct lw_arena_header, vector_stride) == 136, "header.vector_stride");
_Static_assert(offsetof(struct lw_arena_header, creator_pid) == 144, "header.creator_pid");
_Static_assert(offsetof(struct lw_arena_header, barrier_count) == 148, "header.barrier_count");
_Static_assert(offsetof(struct lw_arena_header, created_realtime_ns) == 152, "header.created_realtime_ns");
_Static_assert(offsetof(struct lw_arena_header, barriers_offset) == 160, "header.barriers_offset");
_Static_assert(offsetof(struct lw_arena_header, exchange_nodes_offset) == 168, "header.exchange_nodes_offset");
_Static_assert(offsetof(struct lw_arena_header, exchange_offset) == 176, "header.exchange_offset");
_Static_assert(offsetof(struct lw_arena_header, exchange_vectors) == 184, "header.exchange_vectors");
_Static_assert(offsetof(struct lw_arena_header, barrier_stride) == 188, "header.barrier_stride");
_Static_assert(offsetof(struct lw_arena_header, state) == 192, "header.state");
_Static_assert(offsetof(struct lw_arena_header, state) % LW_CACHE_LINE == 0, "state on its own line");
_Static_assert(sizeof(struct lw_arena_header) % LW_CACHE_LINE == 0, "slots start on a cache line");
_Static_assert(LW_STATE_STOPPING == 3, "state values are part of the layout");

static inline uint64_t lw_round_up(uint64_t x, uint64_t align) {
  return (x + align - 1) / align * align;
}

/// Derives the arena's layout from d (floats per vector), R replicas, W workers, V vectors per
/// replica, B barriers and E exchange vectors per worker. Returns 0, or -EINVAL for an
/// out-of-range argument, or -EOVERFLOW when the sizes do not fit in 64 bits.
static inline int lw_layout_compute(uint64_t d, uint32_t replicas, uint32_t workers, uint32_t vectors,
                                    uint32_t barriers, uint32_t exchange, struct lw_layout *out) {
  if (d == 0 || replicas == 0 || workers == 0 || vectors == 0 || vectors > LW_MAX_VECTORS ||
      barriers > LW_MAX_BARRIERS || exchange > LW_MAX_EXCHANGE_VECTORS)
    return -EINVAL;
  const uint64_t limit = UINT64_MAX / 4;  // every step below stays far from wrapping
  if (d > limit / 4 || (uint64_t)workers + LW_EXTRA_SLOTS > (uint64_t)UINT32_MAX / 4) return -EOVERFLOW;
  struct lw_layout l;
  l.header_size = sizeof(struct lw_arena_header);
  l.slots_offset = l.header_size;
  l.slot_count = (uint64_t)workers + LW_EXTRA_SLOTS;
  l.replicas_offset = lw_round_up(l.slots_offset + l.slot_count * sizeof(struct lw_slot), LW_CACHE_LINE);
  l.barriers_offset = lw_round_up(l.replicas_offset + (uint64_t)replicas * sizeof(struct lw_replica_desc),
                                  LW_CACHE_LINE);
  l.barrier_count = barriers;
  l.barrier_stride = sizeof(struct lw_barrier) + lw_round_up(l.slot_count * sizeof(uint32_t), LW_CACHE_LINE);
  if (l.barrier_stride > UINT32_MAX) return -EOVERFLOW;
  l.exchange_nodes_offset = l.barriers_offset + l.barrier_count * l.barrier_stride;
  l.data_offset = lw_round_up(l.exchange_nodes_offset + (uint64_t)workers * sizeof(int32_t), LW_VECTOR_ALIGN);
  l.vector_stride = lw_round_up(d * sizeof(float), LW_VECTOR_ALIGN);
  uint64_t nvec = (uint64_t)replicas * vectors + (uint64_t)workers * exchange, data;
  if (__builtin_mul_overflow(nvec, l.vector_stride, &data) || data > limit) return -EOVERFLOW;
  l.exchange_offset = l.data_offset + (uint64_t)replicas * vectors * l.vector_stride;
  l.exchange_vectors = exchange;
  l.total_size = l.data_offset + data;
  *out = l;
  return 0;
}

/// The byte offset of vector k of replica r in an arena of layout `l` with V vectors per replica.
static inline uint64_t lw_vector_offset(const struct lw_layout *l, uint32_t vectors, uint32_t r,
                                        uint32_t k) {
  return l->data_offset + ((uint64_t)r * vectors + k) * l->vector_stride;
}

/// The byte offset of exchange vector k of worker w in an arena of layout `l`.
static inline uint64_t lw_exchange_offset(const struct lw_layout *l, uint32_t w, uint32_t k) {
  return l->exchange_offset + ((uint64_t)w * l->exchange_vectors + k) * l->vector_stride;
}

/// The byte offset of barrier b (its struct lw_barrier; its log follows it).
static inline uint64_t lw_barrier_offset(const struct lw_layout *l, uint32_t b) {
  return l->barriers_offset + (uint64_t)b * l->barrier_stride;
}
