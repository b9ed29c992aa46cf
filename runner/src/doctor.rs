//! `gadms-run doctor`: what this build runs on.

use std::fmt::Write;

use gadms_plugin::abi;

use crate::plugin::PluginSet;

/// A human-readable report: the build fingerprint (torch version included), CUDA devices,
/// threads, the plugin search path and what was found there.
pub fn report(plugins: &PluginSet) -> String {
    let mut s = String::new();
    let fp = abi::parse_fingerprint(abi::FINGERPRINT);
    let field = |k: &str| fp.get(k).cloned().unwrap_or_else(|| "unknown".into());
    writeln!(s, "gadms {}", env!("CARGO_PKG_VERSION")).unwrap();
    writeln!(s, "torch (libtorch built against): {}", field("libtorch")).unwrap();
    writeln!(
        s,
        "tch: {}   rustc: {}   target: {}   profile: {}",
        field("tch"),
        field("rustc"),
        field("target"),
        field("profile")
    )
    .unwrap();
    let cuda = tch::Cuda::is_available();
    writeln!(
        s,
        "CUDA available: {cuda}   cuDNN: {}",
        tch::Cuda::cudnn_is_available()
    )
    .unwrap();
    if cuda {
        let gpus = crate::provenance::gpus();
        for i in 0..tch::Cuda::device_count() {
            match gpus.get(i as usize) {
                Some(gpu) => writeln!(s, "  cuda:{i}  {}  (driver {})", gpu.name, gpu.driver).unwrap(),
                None => writeln!(s, "  cuda:{i}  (name unavailable)").unwrap(),
            }
        }
    }
    writeln!(
        s,
        "threads: libtorch intra-op {}   available cores {}",
        tch::get_num_threads(),
        cores()
    )
    .unwrap();
    match crate::dist::gloo_availability() {
        Ok(()) => writeln!(s, "Gloo (training across CPU processes): available").unwrap(),
        Err(why) => writeln!(s, "Gloo (training across CPU processes): {why}").unwrap(),
    }
    writeln!(s, "plugin search path:").unwrap();
    for d in &plugins.search_path {
        writeln!(
            s,
            "  {}{}",
            d.display(),
            if d.exists() { "" } else { "  (missing)" }
        )
        .unwrap();
    }
    writeln!(s, "plugins found: {}", plugins.components().count()).unwrap();
    for c in plugins.components() {
        writeln!(s, "  {:<8} {:<20} {}", c.kind, c.name, c.file.display()).unwrap();
    }
    for p in &plugins.problems {
        writeln!(s, "  problem: {p}").unwrap();
    }
    s
}

fn cores() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}
