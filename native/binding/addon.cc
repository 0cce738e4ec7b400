// Entry point of the vae_native addon: registers the model class and the ops.
#include <napi.h>

namespace vae_binding {
void register_model(Napi::Env env, Napi::Object exports);
void register_ops(Napi::Env env, Napi::Object exports);
}  // namespace vae_binding

static Napi::Object init(Napi::Env env, Napi::Object exports) {
  vae_binding::register_model(env, exports);
  vae_binding::register_ops(env, exports);
  return exports;
}

NODE_API_MODULE(vae_native, init)
