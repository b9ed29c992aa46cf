//! The contract checked before the runner calls any Rust code of a plugin.
//!
//! Loading is staged. The runner first calls the `extern "C"` function
//! [`ABI_SYMBOL`] — safe whatever compiler built the library — and compares the number with
//! [`ABI_VERSION`]. It then reads the build fingerprint through the `extern "C"` function
//! [`FINGERPRINT_SYMBOL`] and compares it field by field with its own. Only when both match
//! does it call the Rust-ABI registration function [`REGISTER_SYMBOL`], because only then are
//! the layouts of the types crossing the boundary (trait objects, `Vec`, `tch::Tensor`)
//! known to agree.

use std::collections::BTreeMap;

/// Bumped whenever the C-level contract (symbol names or signatures) changes, and whenever
/// a trait that crosses the boundary gains, loses or reorders a method: its vtable changes
/// while the fingerprint (which pins the SDK's crate version, not its contents) may not;
/// likewise whenever a struct that crosses it gains, loses or reorders a field.
/// 2: `Dataset::source_files`. 3: `Dataset::labels_noise`, `MaskingStrategy::noise_label_scores`.
/// 4: `LossContext::caption_tokens`.
pub const ABI_VERSION: u32 = 4;

/// `extern "C" fn() -> u32`, returns [`ABI_VERSION`] as the plugin was built.
pub const ABI_SYMBOL: &str = "gadms_plugin_abi_version";
/// `extern "C" fn() -> *const c_char`, the NUL-terminated fingerprint text.
pub const FINGERPRINT_SYMBOL: &str = "gadms_plugin_fingerprint";
/// `fn(&mut Registry) -> Result<(), PluginError>` (Rust ABI).
pub const REGISTER_SYMBOL: &str = "gadms_plugin_register";

/// The signature of [`REGISTER_SYMBOL`].
pub type RegisterFn = fn(&mut crate::Registry) -> crate::Result<()>;

/// `key=value` lines: SDK version, rustc, target, profile, tch, libtorch. Written by the
/// SDK's build script; identical in the runner and in every plugin built in the same
/// workspace with the same profile.
pub const FINGERPRINT: &str = include_str!(concat!(env!("OUT_DIR"), "/fingerprint.txt"));

/// [`FINGERPRINT`] with a trailing NUL, as the C function hands it out.
pub static FINGERPRINT_C: &[u8] =
    concat!(include_str!(concat!(env!("OUT_DIR"), "/fingerprint.txt")), "\0").as_bytes();

/// One field on which two fingerprints disagree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldMismatch {
    pub field: String,
    pub host: String,
    pub plugin: String,
}

/// Parses fingerprint text into its fields.
pub fn parse_fingerprint(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// Compares the plugin's fingerprint with the host's, field by field; a field missing on
/// one side counts as a mismatch.
pub fn compare_fingerprints(host: &str, plugin: &str) -> Vec<FieldMismatch> {
    let host = parse_fingerprint(host);
    let plugin = parse_fingerprint(plugin);
    let missing = "<missing>".to_string();
    let mut fields: Vec<&String> = host.keys().chain(plugin.keys()).collect();
    fields.sort();
    fields.dedup();
    fields
        .into_iter()
        .filter_map(|f| {
            let h = host.get(f).unwrap_or(&missing);
            let p = plugin.get(f).unwrap_or(&missing);
            (h != p).then(|| FieldMismatch {
                field: f.clone(),
                host: h.clone(),
                plugin: p.clone(),
            })
        })
        .collect()
}

/// Declares a plugin: exports the ABI number, the fingerprint and the registration entry
/// point. `$register` is `fn(&mut gadms_plugin::Registry) -> gadms_plugin::Result<()>`.
///
/// ```ignore
/// gadms_plugin::declare_plugin!(register);
/// fn register(r: &mut gadms_plugin::Registry) -> gadms_plugin::Result<()> {
///     r.masking("my-masking", "what it does", MyFactory);
///     Ok(())
/// }
/// ```
#[macro_export]
macro_rules! declare_plugin {
    ($register:path) => {
        #[no_mangle]
        pub extern "C" fn gadms_plugin_abi_version() -> u32 {
            $crate::abi::ABI_VERSION
        }

        #[no_mangle]
        pub extern "C" fn gadms_plugin_fingerprint() -> *const ::std::os::raw::c_char {
            $crate::abi::FINGERPRINT_C.as_ptr().cast()
        }

        #[no_mangle]
        pub fn gadms_plugin_register(registry: &mut $crate::Registry) -> $crate::Result<()> {
            registry.set_package(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"));
            $crate::abi::run_guarded("register", || $register(registry))
        }
    };
}

/// Used by [`declare_plugin!`]: contains a panic of the registration function.
pub fn run_guarded<T>(during: &str, f: impl FnOnce() -> crate::Result<T>) -> crate::Result<T> {
    crate::guard::guard(during, f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_has_every_field_and_a_trailing_nul() {
        let fields = parse_fingerprint(FINGERPRINT);
        for key in ["sdk", "rustc", "target", "profile", "tch", "libtorch"] {
            assert!(
                fields.contains_key(key),
                "fingerprint lacks `{key}`: {FINGERPRINT}"
            );
        }
        assert_eq!(FINGERPRINT_C.last(), Some(&0));
        assert_eq!(&FINGERPRINT_C[..FINGERPRINT_C.len() - 1], FINGERPRINT.as_bytes());
    }

    #[test]
    fn comparison_names_each_differing_field() {
        let host = "sdk=0.1.0\nrustc=rustc 1.95.0\nprofile=release\n";
        let plugin = "sdk=0.1.0\nrustc=rustc 1.80.0\nprofile=debug\n";
        let diff = compare_fingerprints(host, plugin);
        let fields: Vec<_> = diff.iter().map(|d| d.field.as_str()).collect();
        assert_eq!(fields, ["profile", "rustc"]);
        assert_eq!(diff[1].plugin, "rustc 1.80.0");
        assert!(compare_fingerprints(host, host).is_empty());
    }
}
