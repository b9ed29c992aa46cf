// One Adam update of many tensors through libtorch's fused kernel (aten::_fused_adam_, on
// CPU and CUDA), which tch does not expose. The update is memory-bound: written as separate
// tensor operations it reads and writes each parameter-sized buffer a dozen times and
// allocates temporaries as large as the biggest parameter, where the fused kernel makes one
// pass over parameter, gradient and both moments.
#include <ATen/ATen.h>

#include <cstddef>
#include <vector>

#include "guarded.h"

namespace {
std::vector<at::Tensor> gather(const at::Tensor* const* tensors, size_t count) {
  std::vector<at::Tensor> out;
  out.reserve(count);
  for (size_t i = 0; i < count; ++i) {
    out.push_back(*tensors[i]);
  }
  return out;
}
}  // namespace

extern "C" {

// Adam with L2 weight decay (added to the gradient, torch.optim.Adam's `weight_decay`) on
// `count` parameters, their gradients, first and second moments and step counters (0-dim
// float tensors on the parameters' device, incremented here first, as torch.optim does).
// All tensors of one call share a device and a dtype. Returns 0, or -1 with a message.
int gadms_fused_adam(const at::Tensor* const* params, const at::Tensor* const* grads,
                     const at::Tensor* const* exp_avgs, const at::Tensor* const* exp_avg_sqs,
                     const at::Tensor* const* steps, size_t count, double lr, double beta1, double beta2,
                     double weight_decay, double eps, char* err, size_t len) {
  return gadms::guarded(err, len, [&] {
    auto step_counts = gather(steps, count);
    at::_foreach_add_(step_counts, 1);
    at::_fused_adam_(gather(params, count), gather(grads, count), gather(exp_avgs, count),
                     gather(exp_avg_sqs, count), {}, step_counts, lr, beta1, beta2, weight_decay, eps,
                     /*amsgrad=*/false, /*maximize=*/false);
    return 0;
  });
}
}
