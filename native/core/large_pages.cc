#include "core/large_pages.h"

#include <cstdint>

// Not under AddressSanitizer, which checks heap blocks but not mappings.
#if defined(__linux__) && !defined(__SANITIZE_ADDRESS__)
#define VAE_HUGE_PAGES
#include <sys/mman.h>
#endif

namespace vae {

#ifdef VAE_HUGE_PAGES
namespace {
constexpr size_t kHugePage = size_t(2) << 20;
// From half a huge page up, so that rounding up to whole huge pages at most
// doubles a buffer (and only where THP backs it: untouched pages cost nothing).
constexpr size_t kMinHugeBytes = kHugePage / 2;

size_t mapped_bytes(size_t bytes) { return (bytes + kHugePage - 1) / kHugePage * kHugePage; }
}  // namespace
#endif

void* allocate_large(size_t bytes) {
#ifdef VAE_HUGE_PAGES
  if (bytes >= kMinHugeBytes) {
    // Map one huge page more than needed and trim to a 2 MB-aligned range:
    // mmap only aligns to 4 KB.
    const size_t size = mapped_bytes(bytes);
    void* raw = mmap(nullptr, size + kHugePage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) throw std::bad_alloc();
    const uintptr_t start = reinterpret_cast<uintptr_t>(raw), end = start + size + kHugePage;
    const uintptr_t aligned = (start + kHugePage - 1) / kHugePage * kHugePage;
    if (aligned > start) munmap(raw, aligned - start);
    if (end > aligned + size) munmap(reinterpret_cast<void*>(aligned + size), end - (aligned + size));
    // A hint: where THP is off ("never") it has no effect and 4 KB pages serve.
    madvise(reinterpret_cast<void*>(aligned), size, MADV_HUGEPAGE);
    return reinterpret_cast<void*>(aligned);
  }
#endif
  return ::operator new(bytes, std::align_val_t(64));
}

void deallocate_large(void* p, size_t bytes) noexcept {
  if (!p) return;
#ifdef VAE_HUGE_PAGES
  if (bytes >= kMinHugeBytes) {
    munmap(p, mapped_bytes(bytes));
    return;
  }
#endif
  ::operator delete(p, std::align_val_t(64));
}

}  // namespace vae
