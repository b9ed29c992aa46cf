//! Calling the C++ shims of `csrc/`, which follow one convention (`csrc/guarded.h`): a
//! function returns -1 and copies its message into a buffer the caller passes, so no C++
//! exception ever crosses into Rust.

use std::ffi::{c_char, c_int, CStr};

/// Calls a shim function with an error buffer: its non-negative return code, or its message.
pub fn call(f: impl FnOnce(*mut c_char, usize) -> c_int) -> Result<c_int, String> {
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
