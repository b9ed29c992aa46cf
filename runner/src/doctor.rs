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
        let names = gpu_names();
        for i in 0..tch::Cuda::device_count() {
            let name = names
                .get(i as usize)
                .map(String::as_str)
                .unwrap_or("(name unavailable)");
            writeln!(s, "  cuda:{i}  {name}").unwrap();
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

/// Device names from `nvidia-smi`, which every CUDA driver installation ships; tch has no
/// binding for device properties.
fn gpu_names() -> Vec<String> {
    std::process::Command::new("nvidia-smi")
        .args(["--query-gpu=name", "--format=csv,noheader"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .map(|l| l.trim().to_string())
                .collect()
        })
        .unwrap_or_default()
}
