// Argument conversion for the binding layer. TypeScript validates first and
// names the user's arguments; these cheap re-checks only guarantee that no
// call can read or write out of bounds. With C++ exceptions disabled, every
// helper returns false after scheduling a JS exception; callers return at once.
#pragma once
#include <napi.h>

#include <cmath>
#include <cstdint>
#include <string>

#include "core/ops.h"

namespace vae_binding {

// Creates an Error with a `.code` property (the JS side maps it to VaeError).
inline Napi::Error make_error(Napi::Env env, const std::string& code, const std::string& message) {
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("code", Napi::String::New(env, code));
  return error;
}

inline void throw_error(Napi::Env env, const std::string& code, const std::string& message) {
  make_error(env, code, message).ThrowAsJavaScriptException();
}

// A failure as plain C++ values (empty code: success), made where no N-API
// call may run. An error about one value of a matrix argument also says which
// (fault non-empty): the JS side composes its message from these fields, so
// that callers such as the CLI can name the value in their own terms
// (lib/errors.ts, badValueError); `message` is only a fallback.
struct TaskError {
  std::string code, message;
  std::string fault = {};     // "non-finite" or "outside [0, 1]"
  std::string argument = {};  // e.g. "data", "x"
  int64_t row = 0, column = 0;
  double value = 0;
};

enum class BadValueFault { NonFinite, OutsideUnit };

// The error for value x[index] of argument `name` (row-major, cols wide); the
// fault decides the code, as in lib/errors.ts.
inline TaskError bad_value_error(BadValueFault kind, const std::string& name, int64_t index, int cols, float value) {
  const bool non_finite = kind == BadValueFault::NonFinite;
  const std::string fault = non_finite ? "non-finite" : "outside [0, 1]";
  const int64_t row = index / cols, column = index % cols;
  return {non_finite ? "ERR_NON_FINITE" : "ERR_INVALID_ARGUMENT",
          name + ": " + fault + " value at row " + std::to_string(row) + ", column " + std::to_string(column),
          fault, name, row, column, static_cast<double>(value)};
}

inline Napi::Error make_error(Napi::Env env, const TaskError& e) {
  Napi::Error error = make_error(env, e.code, e.message);
  if (!e.fault.empty()) {
    Napi::Object bad = Napi::Object::New(env);
    bad.Set("fault", Napi::String::New(env, e.fault));
    bad.Set("argument", Napi::String::New(env, e.argument));
    bad.Set("row", Napi::Number::New(env, static_cast<double>(e.row)));
    bad.Set("column", Napi::Number::New(env, static_cast<double>(e.column)));
    bad.Set("value", Napi::Number::New(env, e.value));
    error.Set("badValue", bad);
  }
  return error;
}

inline void throw_type(Napi::Env env, const std::string& name, const std::string& expected) {
  Napi::TypeError error = Napi::TypeError::New(env, "Expected " + expected + " for " + name);
  error.Set("code", Napi::String::New(env, "ERR_INVALID_ARGUMENT"));
  error.ThrowAsJavaScriptException();
}

// False once the environment can no longer run JavaScript: a worker thread
// being terminated, whose running calls Node still completes. N-API calls that
// need JS (creating an ArrayBuffer, settling a promise) then fail and return
// empty values, so nothing may be written through them.
inline bool can_run_js(Napi::Env env) {
  napi_value probe;
  return napi_create_arraybuffer(env, 0, nullptr, &probe) == napi_ok;
}

struct F32 {
  float* data = nullptr;
  int64_t length = 0;
};

// The first a_len floats at a and the first b_len at b share memory (any of
// them from the same ArrayBuffer, at any offsets).
inline bool overlap(const float* a, int64_t a_len, const float* b, int64_t b_len) {
  if (!a || !b || a_len <= 0 || b_len <= 0) return false;
  const auto a0 = reinterpret_cast<uintptr_t>(a), b0 = reinterpret_cast<uintptr_t>(b);
  return a0 < b0 + static_cast<uintptr_t>(b_len) * sizeof(float) && b0 < a0 + static_cast<uintptr_t>(a_len) * sizeof(float);
}

// A Float32Array (any byteOffset) with at least min_length elements; when
// nullable, null/undefined gives an empty view.
inline bool get_f32(const Napi::CallbackInfo& info, size_t index, const char* name, int64_t min_length,
                    F32* out, bool nullable = false) {
  Napi::Value v = info[index];
  if (nullable && (v.IsNull() || v.IsUndefined())) {
    *out = F32{};
    return true;
  }
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
    throw_type(info.Env(), name, "a Float32Array");
    return false;
  }
  Napi::Float32Array array = v.As<Napi::Float32Array>();
  out->data = array.Data();
  out->length = static_cast<int64_t>(array.ElementLength());
  if (out->length < min_length) {
    throw_type(info.Env(), name, "a Float32Array of at least " + std::to_string(min_length) + " elements");
    return false;
  }
  return true;
}

inline bool get_f64_array(const Napi::CallbackInfo& info, size_t index, const char* name, int64_t min_length,
                          double** data) {
  Napi::Value v = info[index];
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float64_array ||
      static_cast<int64_t>(v.As<Napi::Float64Array>().ElementLength()) < min_length) {
    throw_type(info.Env(), name, "a Float64Array of at least " + std::to_string(min_length) + " elements");
    return false;
  }
  *data = v.As<Napi::Float64Array>().Data();
  return true;
}

// An integer-valued number in [lo, hi].
inline bool get_int(const Napi::CallbackInfo& info, size_t index, const char* name, int64_t lo, int64_t hi,
                    int64_t* out) {
  Napi::Value v = info[index];
  if (!v.IsNumber()) {
    throw_type(info.Env(), name, "an integer");
    return false;
  }
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= static_cast<double>(lo) && d <= static_cast<double>(hi)) || d != static_cast<double>(static_cast<int64_t>(d))) {
    throw_type(info.Env(), name, "an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
    return false;
  }
  *out = static_cast<int64_t>(d);
  return true;
}

inline bool get_number(const Napi::CallbackInfo& info, size_t index, const char* name, double* out) {
  Napi::Value v = info[index];
  if (!v.IsNumber() || !std::isfinite(v.As<Napi::Number>().DoubleValue())) {
    throw_type(info.Env(), name, "a finite number");
    return false;
  }
  *out = v.As<Napi::Number>().DoubleValue();
  return true;
}

inline double get_prop_number(Napi::Object o, const char* key, double fallback) {
  Napi::Value v = o.Get(key);
  return v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : fallback;
}

// Adam's hyper-parameters from info[index], an object {learningRate, beta1,
// beta2, epsilon, weightDecay} of finite numbers. No defaults: a misspelt or
// missing key is an error, not a silent default.
inline bool get_adam_hyper(const Napi::CallbackInfo& info, size_t index, vae::AdamHyper* out) {
  if (!info[index].IsObject()) {
    throw_type(info.Env(), "hyper", "an object {learningRate, beta1, beta2, epsilon, weightDecay}");
    return false;
  }
  Napi::Object h = info[index].As<Napi::Object>();
  struct Field {
    const char* key;
    float* value;
  };
  for (const Field& f : {Field{"learningRate", &out->lr}, Field{"beta1", &out->beta1}, Field{"beta2", &out->beta2},
                         Field{"epsilon", &out->eps}, Field{"weightDecay", &out->weight_decay}}) {
    Napi::Value v = h.Get(f.key);
    if (!v.IsNumber() || !std::isfinite(v.As<Napi::Number>().DoubleValue())) {
      throw_type(info.Env(), std::string("hyper.") + f.key, "a finite number");
      return false;
    }
    *f.value = static_cast<float>(v.As<Napi::Number>().DoubleValue());
  }
  return true;
}

}  // namespace vae_binding
