// Persistent worker pool (see thread_pool.h).
//
// Design:
//  - Thread 0 of every job is the caller; workers 1..n_workers are persistent.
//  - Static partitioning: task i always computes the same slice of work, so
//    results never depend on timing. Which thread runs a task is dynamic:
//    threads claim tasks from one atomic word (generation | tasks left), so a
//    worker that wakes late (asleep, preempted) just finds fewer tasks left;
//    the caller never waits for a thread that has not started, only for
//    claimed tasks to finish.
//  - Each worker owns a cache-line-sized slot holding the generation number of
//    the last job posted to it. A worker spins briefly on its own slot (cheap
//    dispatch between back-to-back GEMMs), then sleeps on a condition variable
//    so an idle process burns no CPU.
//  - Sleeping uses the "flag + seq_cst" handshake: the sleeper publishes
//    `sleeping = true` before re-checking the condition under the mutex, the
//    waker publishes the condition before reading `sleeping`. With seq_cst on
//    both sides at least one of them sees the other, so no wake-up is lost and
//    the mutex/notify is only paid when someone actually sleeps.
//  - One job at a time (job_mutex): several models in one process share the
//    cores instead of oversubscribing them.
//  - The shared pool is intentionally leaked: workers sleep forever in a
//    condition variable and die with the process, so there is no join racing
//    with static destructors at exit. The addon is linked never to be
//    unloaded (binding.gyp), because Node dlcloses it when the last worker
//    thread that loaded it exits, and these threads would then run unmapped
//    code.
#include "thread_pool.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__linux__)
#include <sched.h>
#endif
#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__) || defined(_M_IX86)
#include <immintrin.h>  // _mm_pause (SSE2 baseline, no extra flags needed)
#endif

namespace vae {

namespace {

// How long an idle thread busy-waits before sleeping. Long enough to bridge the
// gap between consecutive GEMMs of one training step (waking a sleeping thread
// costs ~50-200 us on a VM), short enough that an idle process stops using the
// cores almost at once. Override with the environment variable VAE_POOL_SPIN_US.
constexpr long kDefaultSpinMicros = 500;

std::chrono::microseconds spin_time() {
  static const std::chrono::microseconds value = [] {
    long us = kDefaultSpinMicros;
    if (const char* env = std::getenv("VAE_POOL_SPIN_US")) {
      char* end = nullptr;
      const long parsed = std::strtol(env, &end, 10);
      if (end != env && parsed >= 0) us = std::min(parsed, 1000000L);
    }
    return std::chrono::microseconds(us);
  }();
  return value;
}

inline void cpu_relax() {
#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__) || defined(_M_IX86)
  _mm_pause();
#elif defined(__aarch64__) || defined(__arm__)
  __asm__ __volatile__("yield");
#endif
}

// Spins until pred() holds or `limit` elapses; returns pred()'s last value.
// After a short pure spin it also yields, so a spinning thread gives its core
// to other runnable threads when the machine is oversubscribed.
template <class Pred>
bool spin_until(Pred pred, std::chrono::microseconds limit) {
  constexpr auto kPureSpin = std::chrono::microseconds(20);
  const auto start = std::chrono::steady_clock::now();
  const auto deadline = start + limit;
  for (;;) {
    for (int i = 0; i < 64; ++i) {
      if (pred()) return true;
      cpu_relax();
    }
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) return pred();
    if (now - start > kPureSpin) std::this_thread::yield();
  }
}

// True while this thread is executing pool tasks (workers always; the caller
// during its own share of a job). A nested run() then executes inline instead
// of deadlocking on job_mutex.
thread_local bool tl_inside_pool_task = false;

struct alignas(64) WorkerSlot {
  std::atomic<uint64_t> posted{0};  // generation of the last job for this worker
  std::atomic<bool> sleeping{false};
  std::mutex mutex;
  std::condition_variable cv;
};

}  // namespace

struct ThreadPool::Impl {
  explicit Impl(int workers) : n_workers(workers), slots(new WorkerSlot[workers > 0 ? workers : 1]) {}

  const int n_workers;
  std::unique_ptr<WorkerSlot[]> slots;  // slots[w - 1] belongs to thread w
  std::vector<std::thread> threads;

  std::mutex job_mutex;  // serialises callers; held for a whole job

  // The current job. Written by the caller before publishing `claim`; a
  // thread reads them only after claiming a task of that job (the job cannot
  // end, and so cannot be overwritten, before that task is done).
  TaskFn fn = nullptr;
  void* ctx = nullptr;
  int n_tasks = 0;
  uint64_t generation = 0;
  bool stopping = false;

  // (generation & 0xffffffff) << 32 | number of unclaimed tasks. Tasks are
  // claimed from n_tasks - 1 down to 0. A stale worker (woken for an earlier
  // job) fails the generation check and touches nothing else.
  alignas(64) std::atomic<uint64_t> claim{0};
  alignas(64) std::atomic<int> done_tasks{0};
  std::atomic<bool> caller_sleeping{false};
  std::mutex done_mutex;
  std::condition_variable done_cv;

  std::mutex error_mutex;
  std::exception_ptr first_error;  // only allocated when a task throws

  static uint64_t tag(uint64_t gen) { return (gen & 0xffffffffu) << 32; }

  // Claims and runs tasks of job `gen` until none is left.
  void run_claimed(uint64_t gen) {
    constexpr uint64_t kCountMask = 0xffffffffu;
    const uint64_t want = tag(gen);
    uint64_t cur = claim.load(std::memory_order_acquire);
    for (;;) {
      if ((cur & ~kCountMask) != want || (cur & kCountMask) == 0) return;
      if (!claim.compare_exchange_weak(cur, cur - 1, std::memory_order_acq_rel,
                                       std::memory_order_acquire)) {
        continue;  // cur was reloaded
      }
      const int task = static_cast<int>(cur & kCountMask) - 1;
      const int total = n_tasks;  // safe: the job lasts until this task is done
      try {
        fn(ctx, task, total);
      } catch (...) {
        record_error();
      }
      // The last task to finish wakes the caller if it went to sleep.
      if (done_tasks.fetch_add(1, std::memory_order_seq_cst) == total - 1 &&
          caller_sleeping.load(std::memory_order_seq_cst)) {
        { std::lock_guard<std::mutex> lock(done_mutex); }
        done_cv.notify_one();
      }
      cur = claim.load(std::memory_order_acquire);
    }
  }

  void record_error() {
    std::lock_guard<std::mutex> lock(error_mutex);
    if (!first_error) first_error = std::current_exception();
  }

  void post(int worker, uint64_t gen) {
    WorkerSlot& slot = slots[worker - 1];
    slot.posted.store(gen, std::memory_order_seq_cst);
    if (slot.sleeping.load(std::memory_order_seq_cst)) {
      { std::lock_guard<std::mutex> lock(slot.mutex); }
      slot.cv.notify_one();
    }
  }

  void worker_loop(int worker) {
    tl_inside_pool_task = true;
    WorkerSlot& slot = slots[worker - 1];
    uint64_t seen = 0;
    for (;;) {
      auto has_job = [&] { return slot.posted.load(std::memory_order_acquire) != seen; };
      if (!spin_until(has_job, spin_time())) {
        slot.sleeping.store(true, std::memory_order_seq_cst);
        std::unique_lock<std::mutex> lock(slot.mutex);
        slot.cv.wait(lock, [&] { return slot.posted.load(std::memory_order_seq_cst) != seen; });
        slot.sleeping.store(false, std::memory_order_relaxed);
      }
      seen = slot.posted.load(std::memory_order_acquire);
      if (stopping) return;
      run_claimed(seen);
    }
  }

  void wait_for_tasks(int total) {
    auto done = [&] { return done_tasks.load(std::memory_order_acquire) == total; };
    if (spin_until(done, spin_time())) return;
    caller_sleeping.store(true, std::memory_order_seq_cst);
    {
      std::unique_lock<std::mutex> lock(done_mutex);
      done_cv.wait(lock, [&] { return done_tasks.load(std::memory_order_seq_cst) == total; });
    }
    caller_sleeping.store(false, std::memory_order_relaxed);
  }
};

ThreadPool::ThreadPool(int n_workers) : impl_(new Impl(std::max(0, n_workers))) {
  impl_->threads.reserve(impl_->n_workers);
  for (int w = 1; w <= impl_->n_workers; ++w) {
    impl_->threads.emplace_back([this, w] { impl_->worker_loop(w); });
  }
}

// Never runs for the shared pool (leaked on purpose); kept correct for any
// future non-shared pools: stop every worker and join it.
ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(impl_->job_mutex);
    impl_->stopping = true;
    const uint64_t gen = ++impl_->generation;
    for (int w = 1; w <= impl_->n_workers; ++w) impl_->post(w, gen);
  }
  for (std::thread& t : impl_->threads) t.join();
  delete impl_;
}

void ThreadPool::run(int n_tasks, int max_threads, TaskFn fn, void* ctx) {
  if (n_tasks <= 0) return;
  const int used = std::min({max_threads, n_tasks, impl_->n_workers + 1});
  if (used <= 1 || tl_inside_pool_task) {
    for (int task = n_tasks - 1; task >= 0; --task) fn(ctx, task, n_tasks);  // the claiming order
    return;
  }

  Impl& s = *impl_;
  std::lock_guard<std::mutex> job_lock(s.job_mutex);
  s.fn = fn;
  s.ctx = ctx;
  s.n_tasks = n_tasks;
  s.first_error = nullptr;
  s.done_tasks.store(0, std::memory_order_relaxed);
  const uint64_t gen = ++s.generation;
  s.claim.store(Impl::tag(gen) | static_cast<uint32_t>(n_tasks), std::memory_order_seq_cst);
  for (int w = 1; w < used; ++w) s.post(w, gen);  // seq_cst store publishes the job

  tl_inside_pool_task = true;
  s.run_claimed(gen);  // the caller claims tasks too (all of them if workers are late)
  tl_inside_pool_task = false;

  // Claimed tasks still reference ctx: always wait before returning or rethrowing.
  s.wait_for_tasks(n_tasks);
  if (s.first_error) {
    std::exception_ptr error = s.first_error;
    s.first_error = nullptr;
    std::rethrow_exception(error);
  }
}

void wait_at_least(const std::atomic<int>& counter, int target) {
  // The tasks waited for are running, so the wait is short: spin (sharing the
  // core after a pure spin) and never sleep, since nobody would wake us.
  auto reached = [&] { return counter.load(std::memory_order_acquire) >= target; };
  while (!spin_until(reached, std::chrono::seconds(1))) {
  }
}

int ThreadPool::capacity() const { return impl_->n_workers + 1; }

ThreadPool& ThreadPool::shared() {
  // Leaked singleton: see the file comment.
  static ThreadPool* pool = new ThreadPool(hardware_threads() - 1);
  return *pool;
}

int hardware_threads() {
  static const int count = [] {
    int n = 0;
#if defined(__linux__)
    // Respect the affinity mask (containers, taskset) rather than the host's core count.
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) == 0) n = CPU_COUNT(&set);
#endif
    if (n <= 0) n = static_cast<int>(std::thread::hardware_concurrency());
    return std::max(1, n);
  }();
  return count;
}

}  // namespace vae
