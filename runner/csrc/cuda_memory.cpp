// The CUDA caching allocator's peak, which tch does not expose: the figure that
// torch.cuda.max_memory_allocated reports, so a gadms run and a PyTorch script measure memory
// alike. It goes through c10's device-allocator interface, so no CUDA header is needed; a
// libtorch without CUDA, a device not in use yet or a bad index throw, and each function
// catches every C++ exception and reports -1, so none crosses into Rust.
#include <c10/core/CachingDeviceAllocator.h>

#include <cstdint>

namespace {
c10::DeviceAllocator* cuda_allocator() { return c10::getDeviceAllocator(c10::DeviceType::CUDA); }
}  // namespace

extern "C" {

// Peak bytes allocated on CUDA device `device` since the process started or since the last
// `gadms_cuda_reset_peak`, or -1.
int64_t gadms_cuda_peak_allocated(int device) {
  try {
    const auto stats = cuda_allocator()->getDeviceStats(static_cast<c10::DeviceIndex>(device));
    return stats.allocated_bytes[static_cast<size_t>(c10::CachingAllocator::StatType::AGGREGATE)].peak;
  } catch (...) {
    return -1;
  }
}

// Restarts the peak of device `device` from what is allocated now. Returns 0, or -1.
int gadms_cuda_reset_peak(int device) {
  try {
    cuda_allocator()->resetPeakStats(static_cast<c10::DeviceIndex>(device));
    return 0;
  } catch (...) {
    return -1;
  }
}
}
