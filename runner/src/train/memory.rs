//! Peak GPU memory of a run as the CUDA caching allocator counts it: the figure
//! `torch.cuda.max_memory_allocated` reports, so that a gadms run and a PyTorch script are
//! compared alike. tch has no binding for it; `csrc/cuda_memory.cpp` reads it.

use std::os::raw::c_int;

use tch::Device;

extern "C" {
    fn gadms_cuda_peak_allocated(device: c_int) -> i64;
    fn gadms_cuda_reset_peak(device: c_int) -> c_int;
}

/// Peak bytes allocated on `device` since the previous call (or since the process started),
/// and restarts the count from what is allocated now. `None` on the CPU, before CUDA is in
/// use, or where the build has no CUDA.
pub fn take_peak(device: Device) -> Option<u64> {
    let Device::Cuda(index) = device else {
        return None;
    };
    let index = c_int::try_from(index).ok()?;
    // SAFETY: plain C functions; the C++ side catches every exception.
    let peak = unsafe { gadms_cuda_peak_allocated(index) };
    // SAFETY: as above. A failed reset leaves the peak running, which only overstates it.
    let _ = unsafe { gadms_cuda_reset_peak(index) };
    u64::try_from(peak).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_peak_on_the_cpu_or_without_cuda() {
        assert_eq!(take_peak(Device::Cpu), None);
        if !tch::Cuda::is_available() {
            assert_eq!(
                take_peak(Device::Cuda(0)),
                None,
                "an unusable device reports nothing"
            );
        }
    }

    /// On a GPU: the peak covers a tensor allocated since the last call, and the next call
    /// starts from what is still allocated.
    #[test]
    fn the_peak_covers_an_allocation_and_restarts() {
        if !tch::Cuda::is_available() {
            return;
        }
        let device = Device::Cuda(0);
        let kept = tch::Tensor::zeros([1 << 20], (tch::Kind::Float, device));
        take_peak(device);
        drop(tch::Tensor::zeros([1 << 22], (tch::Kind::Float, device)));
        let peak = take_peak(device).expect("a peak on a CUDA device");
        assert!(
            peak >= (4 << 20) + (16 << 20),
            "peak {peak} misses the 16 MiB tensor"
        );
        let after = take_peak(device).expect("a peak on a CUDA device");
        assert!(after < (16 << 20), "the peak did not restart: {after}");
        drop(kept);
    }
}
