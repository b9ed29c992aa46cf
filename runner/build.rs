//! Makes `gadms-run` (and the test binaries) find libtorch with no environment set, and
//! makes CUDA work: `tch` reaches libtorch_cuda only through static initialisers, so under
//! `--as-needed` the linker drops it and CUDA silently reports unavailable. We force it in
//! and add an rpath to the libtorch folder the build used.

use std::path::Path;

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        return;
    };
    println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    if Path::new(&lib).join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
    }
}
