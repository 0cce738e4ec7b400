// Storage for the large buffers a training step streams through (the
// parameter block, its gradients, Adam's moments, the packed weights, the
// workspace): on Linux, 2 MB-aligned mappings marked for transparent huge
// pages. A step of the classic model touches about 16 MB: some 4,000 pages of
// 4 KB, twice what a Zen 3 core's L2 TLB holds, against a handful of 2 MB
// ones. Measured (same-process A/B, 2 threads): training at batch 128 1-3%
// faster, encoding one row 5-9% and 4096 rows 1-2%. Small buffers, other
// systems and AddressSanitizer builds get plain 64-byte-aligned memory.
#pragma once
#include <cstddef>
#include <new>
#include <vector>

namespace vae {

// 64-byte aligned; never nullptr (throws std::bad_alloc like operator new).
void* allocate_large(size_t bytes);
// bytes must be what allocate_large was given.
void deallocate_large(void* p, size_t bytes) noexcept;

template <class T>
struct LargePageAllocator {
  using value_type = T;
  LargePageAllocator() = default;
  template <class U>
  LargePageAllocator(const LargePageAllocator<U>&) noexcept {}
  T* allocate(size_t n) { return static_cast<T*>(allocate_large(n * sizeof(T))); }
  void deallocate(T* p, size_t n) noexcept { deallocate_large(p, n * sizeof(T)); }
  template <class U>
  bool operator==(const LargePageAllocator<U>&) const noexcept { return true; }
  template <class U>
  bool operator!=(const LargePageAllocator<U>&) const noexcept { return false; }
};

// A float buffer that may be large (sized by the model or the batch).
using LargeFloatBuffer = std::vector<float, LargePageAllocator<float>>;

}  // namespace vae
