//! The Gloo engine: collectives on CPU tensors over TCP, and the rendezvous store (a shared
//! folder or a Redis server) that every engine meets through. `csrc/gloo.cpp` holds the C
//! side; a build without libgloo-dev has stubs there, and opening a store then says how to
//! get Gloo.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::time::Duration;

use tch::{Device, Kind, Tensor};

use super::rendezvous::StoreAddress;
use super::{Collective, DistError};

#[repr(C)]
struct RawStore {
    _opaque: [u8; 0],
}

#[repr(C)]
struct RawContext {
    _opaque: [u8; 0],
}

extern "C" {
    fn gadms_gloo_available(err: *mut c_char, len: usize) -> c_int;
    fn gadms_gloo_file_store(
        path: *const c_char,
        out: *mut *mut RawStore,
        err: *mut c_char,
        len: usize,
    ) -> c_int;
    fn gadms_gloo_redis_store(
        host: *const c_char,
        port: c_int,
        out: *mut *mut RawStore,
        err: *mut c_char,
        len: usize,
    ) -> c_int;
    fn gadms_gloo_store_free(store: *mut RawStore);
    fn gadms_gloo_store_set(
        store: *mut RawStore,
        key: *const c_char,
        data: *const c_char,
        size: usize,
        err: *mut c_char,
        len: usize,
    ) -> c_int;
    fn gadms_gloo_store_get(
        store: *mut RawStore,
        key: *const c_char,
        timeout_ms: i64,
        data: *mut *mut c_char,
        size: *mut usize,
        err: *mut c_char,
        len: usize,
    ) -> c_int;
    fn gadms_gloo_free(data: *mut c_char);
    fn gadms_gloo_connect(
        store: *mut RawStore,
        rank: c_int,
        size: c_int,
        hostname: *const c_char,
        iface: *const c_char,
        timeout_ms: i64,
        out: *mut *mut RawContext,
        err: *mut c_char,
        len: usize,
    ) -> c_int;
    fn gadms_gloo_context_free(context: *mut RawContext);
    fn gadms_gloo_allreduce_sum(
        context: *mut RawContext,
        data: *mut c_void,
        count: usize,
        dtype: c_int,
        timeout_ms: i64,
        err: *mut c_char,
        len: usize,
    ) -> c_int;
    fn gadms_gloo_allgather(
        context: *mut RawContext,
        input: *const c_void,
        output: *mut c_void,
        bytes: usize,
        timeout_ms: i64,
        err: *mut c_char,
        len: usize,
    ) -> c_int;
    fn gadms_gloo_broadcast(
        context: *mut RawContext,
        data: *mut c_void,
        bytes: usize,
        root: c_int,
        timeout_ms: i64,
        err: *mut c_char,
        len: usize,
    ) -> c_int;
    fn gadms_gloo_barrier(context: *mut RawContext, timeout_ms: i64, err: *mut c_char, len: usize) -> c_int;
}

/// Calls a shim function with an error buffer: its non-negative return code, or its message.
pub(super) fn call(f: impl FnOnce(*mut c_char, usize) -> c_int) -> Result<c_int, String> {
    let mut err = [0u8; 1024];
    let rc = f(err.as_mut_ptr().cast(), err.len());
    if rc < 0 {
        let message = CStr::from_bytes_until_nul(&err)
            .map(|m| m.to_string_lossy().into_owned())
            .unwrap_or_default();
        return Err(message);
    }
    Ok(rc)
}

fn c_string(text: &str) -> Result<CString, String> {
    CString::new(text).map_err(|_| format!("`{text}` contains a NUL byte"))
}

pub(super) fn millis(timeout: Duration) -> i64 {
    i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX)
}

/// Whether this build has Gloo, and if not, what to do about it.
pub fn availability() -> Result<(), String> {
    // SAFETY: only writes a message into the buffer.
    call(|err, len| unsafe { gadms_gloo_available(err, len) }).map(|_| ())
}

/// A rendezvous store: keys every rank can set and wait for.
pub struct Store {
    raw: *mut RawStore,
}

impl Store {
    pub fn open(address: &StoreAddress) -> Result<Self, String> {
        availability()?;
        let mut raw = std::ptr::null_mut();
        match address {
            StoreAddress::Folder(path) => {
                std::fs::create_dir_all(path).map_err(|e| format!("cannot create the folder: {e}"))?;
                let path = c_string(&path.to_string_lossy())?;
                // SAFETY: valid C string and out-pointer; the shim catches every exception.
                call(|err, len| unsafe { gadms_gloo_file_store(path.as_ptr(), &mut raw, err, len) })?;
            }
            StoreAddress::Redis { host, port } => {
                let host = c_string(host)?;
                // SAFETY: as above.
                call(|err, len| unsafe {
                    gadms_gloo_redis_store(host.as_ptr(), c_int::from(*port), &mut raw, err, len)
                })?;
            }
        }
        Ok(Self { raw })
    }

    pub fn set(&self, key: &str, value: &[u8]) -> Result<(), String> {
        let key = c_string(key)?;
        // SAFETY: `value` outlives the call, which copies it.
        call(|err, len| unsafe {
            gadms_gloo_store_set(
                self.raw,
                key.as_ptr(),
                value.as_ptr().cast(),
                value.len(),
                err,
                len,
            )
        })
        .map(|_| ())
    }

    /// The value of `key` once it is set, or `None` when it is not within `timeout`.
    pub fn get(&self, key: &str, timeout: Duration) -> Result<Option<Vec<u8>>, String> {
        let key = c_string(key)?;
        // Gloo's stores take a zero timeout for none at all.
        let timeout = timeout.max(Duration::from_millis(1));
        let (mut data, mut size) = (std::ptr::null_mut(), 0usize);
        // SAFETY: valid pointers; on success the shim hands over a malloc'd buffer.
        let rc = call(|err, len| unsafe {
            gadms_gloo_store_get(
                self.raw,
                key.as_ptr(),
                millis(timeout),
                &mut data,
                &mut size,
                err,
                len,
            )
        })?;
        if rc == 1 {
            return Ok(None);
        }
        // SAFETY: `data` holds `size` bytes from the shim, freed right after the copy.
        let value = unsafe { std::slice::from_raw_parts(data.cast::<u8>(), size).to_vec() };
        // SAFETY: the buffer came from the shim's allocator.
        unsafe { gadms_gloo_free(data) };
        Ok(Some(value))
    }

    fn raw(&self) -> *mut RawStore {
        self.raw
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        // SAFETY: created by the shim, freed once.
        unsafe { gadms_gloo_store_free(self.raw) }
    }
}

/// Where this rank's TCP endpoint listens.
pub enum Endpoint {
    /// The address of a host name (`127.0.0.1` when every rank runs on this machine, or the
    /// machine's own name, the empty string).
    Host(String),
    /// The address of a network interface (`GLOO_SOCKET_IFNAME`).
    Interface(String),
}

/// Collectives on CPU tensors among the ranks of one rendezvous.
pub struct Gloo {
    raw: *mut RawContext,
    rank: usize,
    world: usize,
    /// How long one collective may take.
    timeout: Duration,
}

impl Gloo {
    /// Connects every pair of ranks through `store`.
    pub fn connect(
        store: &Store,
        rank: usize,
        world: usize,
        endpoint: &Endpoint,
        timeout: Duration,
    ) -> Result<Self, String> {
        let (host, iface) = match endpoint {
            Endpoint::Host(h) => (c_string(h)?, c_string("")?),
            Endpoint::Interface(i) => (c_string("")?, c_string(i)?),
        };
        let mut raw = std::ptr::null_mut();
        // SAFETY: valid store, strings and out-pointer; the shim catches every exception.
        call(|err, len| unsafe {
            gadms_gloo_connect(
                store.raw(),
                rank as c_int,
                world as c_int,
                host.as_ptr(),
                iface.as_ptr(),
                millis(timeout),
                &mut raw,
                err,
                len,
            )
        })?;
        Ok(Self {
            raw,
            rank,
            world,
            timeout,
        })
    }

    /// `tensor` checked for this engine: on the CPU and contiguous.
    fn host(&self, tensor: &Tensor) -> Result<(), DistError> {
        if tensor.device() != Device::Cpu || !tensor.is_contiguous() {
            return Err(DistError::Tensor {
                rank: self.rank,
                engine: "Gloo",
                expected: "contiguous CPU",
                found: format!("{:?} {:?}", tensor.device(), tensor.size()),
            });
        }
        Ok(())
    }

    fn failed(&self, op: &'static str) -> impl FnOnce(String) -> DistError + '_ {
        move |message| DistError::Collective {
            rank: self.rank,
            op,
            message,
        }
    }
}

impl Drop for Gloo {
    fn drop(&mut self) {
        // SAFETY: created by the shim, freed once.
        unsafe { gadms_gloo_context_free(self.raw) }
    }
}

/// The shim's element code of `kind` for sums, if it has one.
pub(super) fn sum_code(kind: Kind) -> Option<c_int> {
    match kind {
        Kind::Float => Some(0),
        Kind::Double => Some(1),
        Kind::Int64 => Some(2),
        Kind::Int => Some(3),
        _ => None,
    }
}

/// Bytes of a contiguous tensor.
pub(super) fn bytes(tensor: &Tensor) -> usize {
    tensor.numel() * tensor.kind().elt_size_in_bytes()
}

impl Collective for Gloo {
    fn rank(&self) -> usize {
        self.rank
    }

    fn world(&self) -> usize {
        self.world
    }

    fn all_reduce_sum(&self, tensor: &Tensor) -> Result<(), DistError> {
        self.host(tensor)?;
        let code = sum_code(tensor.kind()).ok_or(DistError::Kind {
            rank: self.rank,
            kind: tensor.kind(),
        })?;
        // SAFETY: a contiguous CPU buffer of `numel` elements of the coded type.
        call(|err, len| unsafe {
            gadms_gloo_allreduce_sum(
                self.raw,
                tensor.data_ptr(),
                tensor.numel(),
                code,
                millis(self.timeout),
                err,
                len,
            )
        })
        .map(|_| ())
        .map_err(self.failed("all-reduce"))
    }

    fn all_gather(&self, tensor: &Tensor) -> Result<Tensor, DistError> {
        let input = tensor.contiguous();
        self.host(&input)?;
        let mut shape = input.size();
        shape[0] *= self.world as i64;
        let output = Tensor::empty(&shape[..], (input.kind(), Device::Cpu));
        // SAFETY: `output` holds `world` times the bytes of `input`.
        call(|err, len| unsafe {
            gadms_gloo_allgather(
                self.raw,
                input.data_ptr(),
                output.data_ptr(),
                bytes(&input),
                millis(self.timeout),
                err,
                len,
            )
        })
        .map_err(self.failed("all-gather"))?;
        Ok(output)
    }

    fn broadcast(&self, tensor: &Tensor) -> Result<(), DistError> {
        self.host(tensor)?;
        // SAFETY: a contiguous CPU buffer of `bytes` bytes.
        call(|err, len| unsafe {
            gadms_gloo_broadcast(
                self.raw,
                tensor.data_ptr(),
                bytes(tensor),
                0,
                millis(self.timeout),
                err,
                len,
            )
        })
        .map(|_| ())
        .map_err(self.failed("broadcast"))
    }

    fn barrier(&self, timeout: Duration) -> Result<(), DistError> {
        // SAFETY: a connected context.
        call(|err, len| unsafe { gadms_gloo_barrier(self.raw, millis(timeout), err, len) })
            .map(|_| ())
            .map_err(self.failed("barrier"))
    }
}
