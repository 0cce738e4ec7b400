// Storage for the large buffers a training step streams through (the
// parameter block, its gradients, Adam's moments, the packed weights): on
// Linux, 2 MB-aligned and marked for transparent huge pages, so that the
// ~20 MB a step of the classic model touches takes a few TLB entries instead
// of ~5,000 (4 KB pages). Small buffers, and other systems, get plain
// 64-byte-aligned memory.
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
