// A persistent worker pool shared by every model in the process.
// Static partitioning: task i of a job always runs the same slice of work, so
// results do not depend on scheduling (bit-identical training for a fixed
// seed and thread count). No allocation per job.
#pragma once

namespace vae {

class ThreadPool {
 public:
  using TaskFn = void (*)(void* ctx, int task, int n_tasks);

  // Runs fn(ctx, task, n_tasks) for every task in [0, n_tasks) using at most
  // max_threads threads (the caller's thread is one of them); returns when all
  // tasks are done. Jobs from different callers are serialised, so several
  // models in one process never oversubscribe the cores.
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

}  // namespace vae
