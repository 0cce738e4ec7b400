// Where a training step's time goes: wall time per phase, summed over the
// threads that ran it, printed per step to stderr when the process exits.
// Compiled in only by the developer build option VAE_PHASE_TIMES
// (cmake-js compile --out build-phases --CDVAE_PHASE_TIMES=ON); otherwise
// VAE_PHASE expands to nothing and costs nothing. Steps, and their wall
// times, come from fit's loop (train_batches), which times each step anyway;
// a lossAndGradients pass adds its phases without a step.
#pragma once

namespace vae::phase {

enum Id {
  Gather,           // copying the batch's shuffled rows
  Forward,          // the layers' products (bias and activation fused)
  Latent,           // split of the head, reparameterization and KL, forward and backward
  Loss,             // reconstruction loss and its gradient
  InputGrad,        // products of each layer's output gradient with W^T
  PackOutputGrad,   // packing each layer's output gradient for the weight gradients
  WeightGrad,       // the weight-gradient products
  BiasGrad,         // column sums of the output gradients
  Adam,             // the optimizer step
  RepackForward,    // W packed for the next step's forward products
  RepackTransposed, // W^T packed for the next step's input gradients
  Noise,            // drawing the next batch's eps
  Wait,             // pieces of the weights waiting for the blocks of rows to finish their layer
  StepWall,         // wall time of fit's steps (not a thread sum; its distribution is printed too)
  kCount
};

#ifdef VAE_PHASE_TIMES
long long now_ns();
void add(Id id, long long ns);
// One step of fit's loop, which took `seconds` of wall time.
void count_step(double seconds);

// Adds the time from construction to destruction to phase `id`.
class Scope {
 public:
  explicit Scope(Id id) : id_(id), start_(now_ns()) {}
  ~Scope() { add(id_, now_ns() - start_); }
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;

 private:
  Id id_;
  long long start_;
};
#endif

}  // namespace vae::phase

#ifdef VAE_PHASE_TIMES
#define VAE_PHASE_CONCAT2(a, b) a##b
#define VAE_PHASE_CONCAT(a, b) VAE_PHASE_CONCAT2(a, b)
// Times the rest of the enclosing block as phase `id`.
#define VAE_PHASE(id) ::vae::phase::Scope VAE_PHASE_CONCAT(vae_phase_scope_, __LINE__)(::vae::phase::id)
#define VAE_PHASE_STEP(seconds) ::vae::phase::count_step(seconds)
#else
#define VAE_PHASE(id) ((void)0)
#define VAE_PHASE_STEP(seconds) ((void)0)
#endif
