//! The NCCL engine: collectives on CUDA tensors, enqueued on torch's current stream of the
//! rank's device (`csrc/nccl.cpp`). The communicator's unique id travels from rank 0 through
//! the rendezvous store. NCCL is opened at run time, so a build on a machine without a GPU
//! has this engine too, and a machine without NCCL gets an error naming what is missing.
//!
//! Unlike Gloo's, NCCL's collectives have no timeout of their own: a peer lost in the middle
//! of one leaves it waiting, and the launcher's stopping of the other ranks ends it.

use std::ffi::{c_char, c_int, c_void, CString};
use std::time::Duration;

use tch::{Device, Tensor};

use super::gloo::{bytes, sum_code, Store};
use super::{Collective, DistError};
use crate::shim::call;

extern "C" {
    fn gadms_nccl_load(path: *const c_char, err: *mut c_char, len: usize) -> c_int;
    fn gadms_nccl_unique_id(out: *mut c_char, err: *mut c_char, len: usize) -> c_int;
    fn gadms_nccl_init(
        id: *const c_char,
        world: c_int,
        rank: c_int,
        device: c_int,
        comm: *mut *mut c_void,
        err: *mut c_char,
        len: usize,
    ) -> c_int;
    fn gadms_nccl_destroy(comm: *mut c_void);
    fn gadms_nccl_all_reduce_sum(
        comm: *mut c_void,
        data: *mut c_void,
        count: usize,
        dtype: c_int,
        device: c_int,
        err: *mut c_char,
        len: usize,
    ) -> c_int;
    fn gadms_nccl_all_gather(
        comm: *mut c_void,
        input: *const c_void,
        output: *mut c_void,
        bytes: usize,
        device: c_int,
        err: *mut c_char,
        len: usize,
    ) -> c_int;
    fn gadms_nccl_broadcast(
        comm: *mut c_void,
        data: *mut c_void,
        bytes: usize,
        root: c_int,
        device: c_int,
        err: *mut c_char,
        len: usize,
    ) -> c_int;
}

/// The size of `ncclUniqueId`.
const UNIQUE_ID_BYTES: usize = 128;

/// Opens NCCL: the copy torch loaded, else the wheel's (`GADMS_NCCL_FALLBACK`, from the build).
fn load() -> Result<(), String> {
    let fallback = CString::new(option_env!("GADMS_NCCL_FALLBACK").unwrap_or("libnccl.so.2"))
        .expect("a path without NUL");
    // SAFETY: a valid C string; the shim catches every exception.
    call(|err, len| unsafe { gadms_nccl_load(fallback.as_ptr(), err, len) }).map(|_| ())
}

/// A new communicator id (no GPU needed).
fn unique_id() -> Result<[u8; UNIQUE_ID_BYTES], String> {
    let mut id = [0u8; UNIQUE_ID_BYTES];
    // SAFETY: `id` has room for the 128 bytes written.
    call(|err, len| unsafe { gadms_nccl_unique_id(id.as_mut_ptr().cast(), err, len) })?;
    Ok(id)
}

/// Collectives on the tensors of one CUDA device among the ranks of one rendezvous.
pub struct Nccl {
    comm: *mut c_void,
    rank: usize,
    world: usize,
    device: usize,
}

impl Nccl {
    /// Joins a new communicator: rank 0 makes its unique id and sets it in `store` under
    /// `key`; the others wait up to `timeout` for it.
    pub fn connect(
        store: &Store,
        key: &str,
        rank: usize,
        world: usize,
        device: usize,
        timeout: Duration,
    ) -> Result<Self, DistError> {
        let failed = DistError::collective(rank, "NCCL set-up");
        load().map_err(failed)?;
        let id = if rank == 0 {
            let id = unique_id().map_err(failed)?;
            store.set(key, &id).map_err(failed)?;
            id.to_vec()
        } else {
            store
                .get(key, timeout)
                .map_err(failed)?
                .ok_or_else(|| failed(format!("rank 0 set no NCCL id (`{key}`) within {timeout:?}")))?
        };
        if id.len() != UNIQUE_ID_BYTES {
            return Err(failed(format!(
                "the NCCL id in the store has {} bytes, not {UNIQUE_ID_BYTES}",
                id.len()
            )));
        }
        let mut comm = std::ptr::null_mut();
        // SAFETY: a 128-byte id and an out-pointer; the shim catches every exception.
        call(|err, len| unsafe {
            gadms_nccl_init(
                id.as_ptr().cast(),
                world as c_int,
                rank as c_int,
                device as c_int,
                &mut comm,
                err,
                len,
            )
        })
        .map_err(failed)?;
        Ok(Self {
            comm,
            rank,
            world,
            device,
        })
    }

    /// `tensor` checked for this engine: contiguous, on this rank's device.
    fn on_device(&self, tensor: &Tensor) -> Result<(), DistError> {
        let fits = tensor.device() == Device::Cuda(self.device) && tensor.is_contiguous();
        let expected = "contiguous tensors on this rank's CUDA device";
        DistError::require(fits, self.rank, "NCCL", expected, tensor)
    }
}

impl Drop for Nccl {
    fn drop(&mut self) {
        // SAFETY: created by the shim, destroyed once.
        unsafe { gadms_nccl_destroy(self.comm) }
    }
}

impl Collective for Nccl {
    fn rank(&self) -> usize {
        self.rank
    }

    fn world(&self) -> usize {
        self.world
    }

    fn all_reduce_sum(&self, tensor: &Tensor) -> Result<(), DistError> {
        self.on_device(tensor)?;
        let code = sum_code(tensor.kind()).ok_or(DistError::Kind {
            rank: self.rank,
            kind: tensor.kind(),
        })?;
        // SAFETY: a contiguous device buffer of `numel` elements of the coded type.
        call(|err, len| unsafe {
            gadms_nccl_all_reduce_sum(
                self.comm,
                tensor.data_ptr(),
                tensor.numel(),
                code,
                self.device as c_int,
                err,
                len,
            )
        })
        .map(|_| ())
        .map_err(DistError::collective(self.rank, "all-reduce"))
    }

    fn all_gather(&self, tensor: &Tensor) -> Result<Tensor, DistError> {
        let input = tensor.contiguous();
        self.on_device(&input)?;
        let mut shape = input.size();
        shape[0] *= self.world as i64;
        let output = Tensor::empty(&shape[..], (input.kind(), input.device()));
        // SAFETY: `output` holds `world` times the bytes of `input`, on the same device.
        call(|err, len| unsafe {
            gadms_nccl_all_gather(
                self.comm,
                input.data_ptr(),
                output.data_ptr(),
                bytes(&input),
                self.device as c_int,
                err,
                len,
            )
        })
        .map_err(DistError::collective(self.rank, "all-gather"))?;
        Ok(output)
    }

    fn broadcast(&self, tensor: &Tensor) -> Result<(), DistError> {
        self.on_device(tensor)?;
        // SAFETY: a contiguous device buffer of `bytes` bytes.
        call(|err, len| unsafe {
            gadms_nccl_broadcast(
                self.comm,
                tensor.data_ptr(),
                bytes(tensor),
                0,
                self.device as c_int,
                err,
                len,
            )
        })
        .map(|_| ())
        .map_err(DistError::collective(self.rank, "broadcast"))
    }

    /// An all-reduce of one element, waited for on the host. The timeout is not enforced
    /// (see the module notes).
    fn barrier(&self, _timeout: Duration) -> Result<(), DistError> {
        let token = Tensor::zeros([1], (tch::Kind::Float, Device::Cuda(self.device)));
        self.all_reduce_sum(&token)?;
        let _ = token.to_device(Device::Cpu);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Opening NCCL and making ids need no GPU (joining a communicator does): where NCCL is
    /// installed both work, and where it is not the error says so.
    #[test]
    fn nccl_opens_and_makes_distinct_ids_or_says_it_is_missing() {
        match load() {
            Ok(()) => {
                let (a, b) = (unique_id().unwrap(), unique_id().unwrap());
                assert_ne!(a, b, "two communicators, two ids");
            }
            Err(message) => assert!(message.contains("cannot open NCCL"), "{message}"),
        }
    }
}
