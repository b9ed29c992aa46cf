//! The Gloo engine: collectives on CPU tensors over TCP, and the rendezvous store (a shared
//! folder or a Redis server) that every engine meets through. `csrc/gloo.cpp` holds the C
//! side, built into `libgadms_gloo.so` and loaded on first use; a build without libgloo-dev
//! has no shim, and opening a store then says how to get Gloo.

use std::ffi::{c_char, c_int, c_void, CString};
use std::time::Duration;

use tch::{Device, Kind, Tensor};

use super::rendezvous::StoreAddress;
use super::{Collective, DistError};
use crate::shim::call;

#[repr(C)]
struct RawStore {
    _opaque: [u8; 0],
}

#[repr(C)]
struct RawContext {
    _opaque: [u8; 0],
}

/// The shim's C functions, loaded from `libgadms_gloo.so` (built from `csrc/gloo.cpp` when
/// libgloo-dev is present). Loading it at run time, not linking it, keeps `gadms-run` free
/// of a libgloo dependency: the binary runs where Gloo is not installed (a GPU box, a user's
/// machine), and only multi-process CPU training asks for it.
macro_rules! shim_api {
    ($($field:ident = $symbol:literal : fn($($arg:ty),*) $(-> $ret:ty)?;)*) => {
        struct Api {
            $($field: unsafe extern "C" fn($($arg),*) $(-> $ret)?,)*
            /// Keeps the functions above mapped.
            _library: libloading::Library,
        }

        impl Api {
            fn load(path: &str) -> Result<Self, String> {
                use libloading::os::unix::{Library, RTLD_LOCAL, RTLD_NOW};
                // libtorch carries its own copy of Gloo and exports it; the shim and the
                // system's libgloo must bind to each other, not to torch's copy of another
                // version, so they are opened with their own symbols first (glibc's
                // RTLD_DEEPBIND).
                const RTLD_DEEPBIND: std::ffi::c_int = 0x0008;
                // SAFETY: the shim has no initialisers beyond its C++ runtime's.
                let library = unsafe { Library::open(Some(path), RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND) }
                    .map(libloading::Library::from)
                    .map_err(|e| {
                    format!(
                        "cannot load the Gloo shim {path}: {e}; install libgloo0 \
                         (`apt-get install libgloo-dev`, which `make build` does)"
                    )
                })?;
                Ok(Self {
                    // SAFETY: each symbol has the signature declared here (csrc/gloo.cpp).
                    $($field: *unsafe { library.get($symbol) }
                        .map_err(|e| format!("the Gloo shim {path} lacks a function: {e}"))?,)*
                    _library: library,
                })
            }
        }
    };
}

shim_api! {
    file_store = b"gadms_gloo_file_store": fn(*const c_char, *mut *mut RawStore, *mut c_char, usize) -> c_int;
    redis_store = b"gadms_gloo_redis_store":
        fn(*const c_char, c_int, *mut *mut RawStore, *mut c_char, usize) -> c_int;
    store_free = b"gadms_gloo_store_free": fn(*mut RawStore);
    store_set = b"gadms_gloo_store_set":
        fn(*mut RawStore, *const c_char, *const c_char, usize, *mut c_char, usize) -> c_int;
    store_get = b"gadms_gloo_store_get":
        fn(*mut RawStore, *const c_char, i64, *mut *mut c_char, *mut usize, *mut c_char, usize) -> c_int;
    free = b"gadms_gloo_free": fn(*mut c_char);
    connect = b"gadms_gloo_connect": fn(
        *mut RawStore, c_int, c_int, *const c_char, *const c_char, i64, *mut *mut RawContext, *mut c_char, usize
    ) -> c_int;
    context_free = b"gadms_gloo_context_free": fn(*mut RawContext);
    allreduce_sum = b"gadms_gloo_allreduce_sum":
        fn(*mut RawContext, *mut c_void, usize, c_int, i64, *mut c_char, usize) -> c_int;
    allgather = b"gadms_gloo_allgather":
        fn(*mut RawContext, *const c_void, *mut c_void, usize, i64, *mut c_char, usize) -> c_int;
    broadcast = b"gadms_gloo_broadcast":
        fn(*mut RawContext, *mut c_void, usize, c_int, i64, *mut c_char, usize) -> c_int;
    barrier = b"gadms_gloo_barrier": fn(*mut RawContext, i64, *mut c_char, usize) -> c_int;
}

/// The loaded shim, or why there is none. `GADMS_GLOO_SHIM` names another copy of it (a
/// binary moved to a machine without the build tree, with the shim and libgloo beside it).
fn api() -> Result<&'static Api, String> {
    static API: std::sync::OnceLock<Result<Api, String>> = std::sync::OnceLock::new();
    let path = std::env::var("GADMS_GLOO_SHIM")
        .ok()
        .or_else(|| option_env!("GADMS_GLOO_SHIM").map(String::from));
    API.get_or_init(|| match path.filter(|p| !p.is_empty()) {
        Some(path) => Api::load(&path),
        None => Err(
            "this build has no Gloo: install libgloo-dev (`apt-get install libgloo-dev`, or \
                  `make build`, which does) and rebuild gadms-run"
                .to_string(),
        ),
    })
    .as_ref()
    .map_err(Clone::clone)
}

fn c_string(text: &str) -> Result<CString, String> {
    CString::new(text).map_err(|_| format!("`{text}` contains a NUL byte"))
}

pub(super) fn millis(timeout: Duration) -> i64 {
    i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX)
}

/// Whether Gloo can be used here (its shim loads), and if not, what to do about it.
pub fn availability() -> Result<(), String> {
    api().map(|_| ())
}

/// A rendezvous store: keys every rank can set and wait for.
pub struct Store {
    raw: *mut RawStore,
    api: &'static Api,
}

impl Store {
    pub fn open(address: &StoreAddress) -> Result<Self, String> {
        let api = api()?;
        let mut raw = std::ptr::null_mut();
        match address {
            StoreAddress::Folder(path) => {
                std::fs::create_dir_all(path).map_err(|e| format!("cannot create the folder: {e}"))?;
                let path = c_string(&path.to_string_lossy())?;
                // SAFETY: valid C string and out-pointer; the shim catches every exception.
                call(|err, len| unsafe { (api.file_store)(path.as_ptr(), &mut raw, err, len) })?;
            }
            StoreAddress::Redis { host, port } => {
                let host = c_string(host)?;
                // SAFETY: as above.
                call(|err, len| unsafe {
                    (api.redis_store)(host.as_ptr(), c_int::from(*port), &mut raw, err, len)
                })?;
            }
        }
        Ok(Self { raw, api })
    }

    pub fn set(&self, key: &str, value: &[u8]) -> Result<(), String> {
        let key = c_string(key)?;
        // SAFETY: `value` outlives the call, which copies it.
        call(|err, len| unsafe {
            (self.api.store_set)(
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
            (self.api.store_get)(
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
        unsafe { (self.api.free)(data) };
        Ok(Some(value))
    }

    fn raw(&self) -> *mut RawStore {
        self.raw
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        // SAFETY: created by the shim, freed once.
        unsafe { (self.api.store_free)(self.raw) }
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
    api: &'static Api,
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
            (store.api.connect)(
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
            api: store.api,
            rank,
            world,
            timeout,
        })
    }

    /// `tensor` checked for this engine: on the CPU and contiguous.
    fn host(&self, tensor: &Tensor) -> Result<(), DistError> {
        let fits = tensor.device() == Device::Cpu && tensor.is_contiguous();
        DistError::require(fits, self.rank, "Gloo", "contiguous CPU", tensor)
    }
}

impl Drop for Gloo {
    fn drop(&mut self) {
        // SAFETY: created by the shim, freed once.
        unsafe { (self.api.context_free)(self.raw) }
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
            (self.api.allreduce_sum)(
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
        .map_err(DistError::collective(self.rank, "all-reduce"))
    }

    fn all_gather(&self, tensor: &Tensor) -> Result<Tensor, DistError> {
        let input = tensor.contiguous();
        self.host(&input)?;
        let mut shape = input.size();
        shape[0] *= self.world as i64;
        let output = Tensor::empty(&shape[..], (input.kind(), Device::Cpu));
        // SAFETY: `output` holds `world` times the bytes of `input`.
        call(|err, len| unsafe {
            (self.api.allgather)(
                self.raw,
                input.data_ptr(),
                output.data_ptr(),
                bytes(&input),
                millis(self.timeout),
                err,
                len,
            )
        })
        .map_err(DistError::collective(self.rank, "all-gather"))?;
        Ok(output)
    }

    fn broadcast(&self, tensor: &Tensor) -> Result<(), DistError> {
        self.host(tensor)?;
        // SAFETY: a contiguous CPU buffer of `bytes` bytes.
        call(|err, len| unsafe {
            (self.api.broadcast)(
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
        .map_err(DistError::collective(self.rank, "broadcast"))
    }

    fn barrier(&self, timeout: Duration) -> Result<(), DistError> {
        // SAFETY: a connected context.
        call(|err, len| unsafe { (self.api.barrier)(self.raw, millis(timeout), err, len) })
            .map(|_| ())
            .map_err(DistError::collective(self.rank, "barrier"))
    }
}
