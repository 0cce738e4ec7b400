// A persistent worker pool shared by every model in the process.
// Static partitioning: task i of a job always runs the same slice of work, so
// results do not depend on scheduling (bit-identical training for a fixed
// seed and thread count). No allocation per job.
#pragma once
#include <atomic>

namespace vae {

class ThreadPool {
 public:
  using TaskFn = void (*)(void* ctx, int task, int n_tasks);

  // Runs fn(ctx, task, n_tasks) for every task in [0, n_tasks) using at most
  // max_threads threads (the caller's thread is one of them); returns when all
  // tasks are done. Jobs from different callers are serialised, so several
  // models in one process never oversubscribe the cores.
  // Tasks start in descending order, n_tasks - 1 first, on one thread or
  // many: a task may wait for tasks numbered above it (wait_at_least), which
  // have all started, never for one below it.
  void run(int n_tasks, int max_threads, TaskFn fn, void* ctx);

  template <class F>
  void parallel(int n_tasks, int max_threads, F& f) {
    run(n_tasks, max_threads,
        [](void* c, int task, int n) { (*static_cast<F*>(c))(task, n); }, &f);
  }

  // Number of hardware threads the pool can use.
  int capacity() const;

  // The process-wide pool.
  static ThreadPool& shared();

  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;
  ~ThreadPool();

 private:
  explicit ThreadPool(int n_workers);
  struct Impl;
  Impl* impl_;
};

// Number of hardware threads (at least 1).
int hardware_threads();

// Within a job, waits until counter >= target, where counter is advanced by
// higher-numbered tasks of the same job (see ThreadPool::run): spins, then
// also yields the core.
void wait_at_least(const std::atomic<int>& counter, int target);

// Calls f(begin, end) over contiguous slices of [0, n) on up to `threads`
// threads, each slice at least `grain` long (small n runs inline). The slices
// depend only on n, threads and grain, so work split this way is deterministic.
template <class F>
void parallel_for_range(long long n, int threads, long long grain, F&& f) {
  long long tasks = (n + grain - 1) / grain;
  if (tasks > threads) tasks = threads;
  if (tasks <= 1) {
    if (n > 0) f(0LL, n);
    return;
  }
  auto body = [&](int task, int n_tasks) {
    const long long chunk = (n + n_tasks - 1) / n_tasks;
    const long long begin = chunk * task, end = begin + chunk < n ? begin + chunk : n;
    if (begin < end) f(begin, end);
  };
  ThreadPool::shared().parallel(static_cast<int>(tasks), threads, body);
}

}  // namespace vae
