// Runs a task on libuv's thread pool and settles a Promise (sharp's pattern):
// the task captures plain C++ values only, makes no N-API calls, and reports
// failure as a code and a message; the JS values it reads or writes are kept
// alive by references held until the worker completes.
#pragma once
#include <napi.h>

#include <exception>
#include <functional>
#include <new>
#include <string>
#include <vector>

#include "binding/args.h"

namespace vae_binding {

class PromiseWorker : public Napi::AsyncWorker {
 public:
  using Task = std::function<TaskError()>;
  using Result = std::function<Napi::Value(Napi::Env)>;

  PromiseWorker(Napi::Env env, Task task, Result result)
      : Napi::AsyncWorker(env, "vae-node"), deferred_(Napi::Promise::Deferred::New(env)),
        task_(std::move(task)), result_(std::move(result)) {}

  // Keeps a JS value (typed array, model object) alive until completion.
  void keep(Napi::Value value) { kept_.push_back(Napi::Persistent(value)); }

  // Queues the worker and returns its promise.
  Napi::Promise start() {
    Napi::Promise promise = deferred_.Promise();
    Queue();
    return promise;
  }

  // Called after settling, on the JS thread (e.g. to clear a busy flag).
  std::function<void()> on_settled;

 protected:
  void Execute() override {
    try {
      error_ = task_();
    } catch (const std::bad_alloc&) {
      error_ = {"ERR_NATIVE", "out of memory"};
    } catch (const std::exception& e) {
      error_ = {"ERR_NATIVE", e.what()};
    }
    if (!error_.code.empty()) SetError(error_.message);
  }
  void OnOK() override {
    if (on_settled) on_settled();
    if (!can_run_js(Env())) return;
    deferred_.Resolve(result_ ? result_(Env()) : Env().Undefined());
  }
  void OnError(const Napi::Error&) override {
    if (on_settled) on_settled();
    if (!can_run_js(Env())) return;
    deferred_.Reject(make_error(Env(), error_).Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  Task task_;
  Result result_;
  TaskError error_;
  std::vector<Napi::Reference<Napi::Value>> kept_;
};

}  // namespace vae_binding
