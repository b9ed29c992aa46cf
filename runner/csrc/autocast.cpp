// Autocast control that tch does not expose: the autocast dtype and the CPU device. Each
// function catches every C++ exception and reports failure as -1, so no exception crosses
// into Rust.
#include <ATen/autocast_mode.h>

namespace {
c10::DeviceType device(int d) { return d == 0 ? c10::DeviceType::CPU : c10::DeviceType::CUDA; }
at::ScalarType dtype(int t) { return t == 0 ? at::kBFloat16 : at::kHalf; }
}  // namespace

extern "C" {

// Enables autocast on `device_type` (0 CPU, 1 CUDA) with `scalar` (0 bf16, 1 fp16).
// Returns the previous enabled state (0/1), or -1 on error.
int gadms_autocast_enter(int device_type, int scalar) {
  try {
    const auto d = device(device_type);
    const int was = at::autocast::is_autocast_enabled(d) ? 1 : 0;
    at::autocast::set_autocast_dtype(d, dtype(scalar));
    at::autocast::set_autocast_enabled(d, true);
    at::autocast::increment_nesting();
    return was;
  } catch (...) {
    return -1;
  }
}

// Leaves an autocast region entered with `gadms_autocast_enter`, restoring `was_enabled`
// and clearing the cast cache when the outermost region ends. Returns 0, or -1 on error.
int gadms_autocast_exit(int device_type, int was_enabled) {
  try {
    if (at::autocast::decrement_nesting() == 0) {
      at::autocast::clear_cache();
    }
    at::autocast::set_autocast_enabled(device(device_type), was_enabled != 0);
    return 0;
  } catch (...) {
    return -1;
  }
}
}
