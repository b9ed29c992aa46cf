//! Makes `gadms-run` (and the test binaries) find libtorch with no environment set, and
//! makes CUDA work: `tch` reaches libtorch_cuda only through static initialisers, so under
//! `--as-needed` the linker drops it and CUDA silently reports unavailable. We force it in
//! and add an rpath to the libtorch folder the build used.
//!
//! Also compiles the few lines of C++ for what tch does not expose, against the same
//! libtorch headers: `csrc/autocast.cpp` (autocast dtype, CPU device),
//! `csrc/cuda_memory.cpp` (the CUDA caching allocator's peak), `csrc/fused_adam.cpp`
//! (libtorch's fused Adam kernel) and `csrc/nccl.cpp` (NCCL, opened at run time, on torch's
//! current stream).
//!
//! `csrc/gloo.cpp` wraps Gloo for CPU collectives. Where libgloo-dev's headers are found it is
//! built into a shared library of its own that `gadms-run` loads on first use, so the binary
//! never needs libgloo; a machine without Gloo builds and runs everything but multi-process
//! CPU training, which then says how to get it.

use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    println!("cargo:rerun-if-changed=csrc/autocast.cpp");
    println!("cargo:rerun-if-changed=csrc/cuda_memory.cpp");
    println!("cargo:rerun-if-changed=csrc/fused_adam.cpp");
    println!("cargo:rerun-if-changed=csrc/nccl.cpp");
    println!("cargo:rerun-if-changed=csrc/guarded.h");
    build_gloo();
    let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        return;
    };
    println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    if Path::new(&lib).join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
    }
    let include = Path::new(&lib)
        .parent()
        .expect("libtorch lib/ has a parent")
        .join("include");
    cc::Build::new()
        .cpp(true)
        .file("csrc/autocast.cpp")
        .file("csrc/cuda_memory.cpp")
        .file("csrc/fused_adam.cpp")
        .file("csrc/nccl.cpp")
        .include(&include)
        .include(include.join("torch/csrc/api/include"))
        .flag("-std=c++17")
        .define("_GLIBCXX_USE_CXX11_ABI", "1")
        .warnings(false)
        .compile("gadms_autocast");
    // Where NCCL is when torch has not loaded it already: the wheel's `nvidia/nccl/lib`.
    let nccl = Path::new(&lib).join("../../nvidia/nccl/lib/libnccl.so.2");
    println!("cargo:rustc-env=GADMS_NCCL_FALLBACK={}", nccl.display());
}

/// Builds `csrc/gloo.cpp` into `libgadms_gloo.so`, linked against Gloo, when its headers are
/// in `GLOO_INCLUDE_DIR`, `/usr/include` or `/usr/local/include`, and tells the crate where
/// it is (`GADMS_GLOO_SHIM`); `gadms-run` loads it only for multi-process CPU training, so
/// the binary itself never needs libgloo. Without the headers the build watches for them to
/// appear, so that installing libgloo-dev and building again picks Gloo up.
fn build_gloo() {
    println!("cargo:rerun-if-changed=csrc/gloo.cpp");
    println!("cargo:rerun-if-env-changed=GLOO_INCLUDE_DIR");
    let candidates: Vec<PathBuf> = std::env::var_os("GLOO_INCLUDE_DIR")
        .map(|d| vec![PathBuf::from(d)])
        .unwrap_or_else(|| vec!["/usr/include".into(), "/usr/local/include".into()]);
    let found = candidates.iter().position(|d| d.join("gloo/config.h").exists());
    // Cargo reruns a script that watches a missing file on every build (and so rebuilds the
    // crate), so headers that are not there are watched through their include folders, in
    // which cargo notices any change: the folders searched before the one used, or all.
    for d in candidates[..found.unwrap_or(candidates.len())]
        .iter()
        .filter(|d| d.is_dir())
    {
        println!("cargo:rerun-if-changed={}", d.display());
    }
    let Some(include) = found.map(|i| &candidates[i]) else {
        return;
    };
    println!(
        "cargo:rerun-if-changed={}",
        include.join("gloo/config.h").display()
    );
    let mut build = cc::Build::new();
    build
        .cpp(true)
        .pic(true)
        .file("csrc/gloo.cpp")
        .flag("-std=c++17")
        .warnings(false)
        .include(include)
        .define("HIREDIS_NESTED_INCLUDE", None);
    let objects = build.compile_intermediates();
    let lib_dir = include
        .parent()
        .expect("an include folder has a parent")
        .join("lib");
    let shim = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("libgadms_gloo.so");
    let status = build
        .get_compiler()
        .to_command()
        .arg("-shared")
        .arg("-o")
        .arg(&shim)
        .args(&objects)
        .arg(format!("-L{}", lib_dir.display()))
        .arg("-lgloo")
        .status()
        .expect("the C++ compiler runs");
    assert!(status.success(), "linking {} failed", shim.display());
    println!("cargo:rustc-env=GADMS_GLOO_SHIM={}", shim.display());
}
