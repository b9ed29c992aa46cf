//! Makes `gadms-run` (and the test binaries) find libtorch with no environment set, and
//! makes CUDA work: `tch` reaches libtorch_cuda only through static initialisers, so under
//! `--as-needed` the linker drops it and CUDA silently reports unavailable. We force it in
//! and add an rpath to the libtorch folder the build used.
//!
//! Also compiles `csrc/autocast.cpp`, the few lines of autocast control (dtype, CPU device)
//! that tch does not expose, against the same libtorch headers.

use std::path::Path;

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    println!("cargo:rerun-if-changed=csrc/autocast.cpp");
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
        .include(&include)
        .include(include.join("torch/csrc/api/include"))
        .flag("-std=c++17")
        .define("_GLIBCXX_USE_CXX11_ABI", "1")
        .warnings(false)
        .compile("gadms_autocast");
}
