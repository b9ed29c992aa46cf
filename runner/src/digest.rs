//! SHA-256 in lowercase hex: the one encoding of digests that run identities, plugin
//! libraries, input files and file checks share.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::SystemTime;

use sha2::{Digest, Sha256};

/// SHA-256 of `bytes` as 64 lowercase hex digits.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Files up to this size are digested whole; larger ones are sampled (see [`file`]).
pub const WHOLE_FILE_LIMIT: u64 = 256 << 20;

/// How many evenly spaced blocks of [`SAMPLE_BLOCK`] bytes stand for a file over
/// [`WHOLE_FILE_LIMIT`], besides its first and last block.
const SAMPLES: u64 = 254;
const SAMPLE_BLOCK: u64 = 1 << 20;

/// The content digest of a file: SHA-256 of the whole file up to [`WHOLE_FILE_LIMIT`]; above,
/// of its length and 256 blocks of 1 MiB spread evenly from the first byte to the last, so
/// that a multi-gigabyte annotation file costs a quarter of a gigabyte to check. Results are
/// remembered per path, length and modification time for the life of the process, because
/// every run of a spec digests the same few files.
pub fn file(path: &Path) -> std::io::Result<String> {
    static CACHE: OnceLock<Mutex<HashMap<FileVersion, String>>> = OnceLock::new();
    let meta = std::fs::metadata(path)?;
    let key = (path.to_path_buf(), meta.len(), meta.modified()?);
    let cache = CACHE.get_or_init(Default::default);
    if let Some(hit) = cache.lock().expect("digest cache lock").get(&key) {
        return Ok(hit.clone());
    }
    let digest = if meta.len() <= WHOLE_FILE_LIMIT {
        whole(path)?
    } else {
        sampled(path, meta.len())?
    };
    cache
        .lock()
        .expect("digest cache lock")
        .insert(key, digest.clone());
    Ok(digest)
}

/// A file as last seen: path, length and modification time.
type FileVersion = (PathBuf, u64, SystemTime);

fn whole(path: &Path) -> std::io::Result<String> {
    let mut hasher = Sha256::new();
    std::io::copy(&mut std::fs::File::open(path)?, &mut hasher)?;
    Ok(hex(&hasher.finalize()))
}

fn sampled(path: &Path, len: u64) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    hasher.update(len.to_le_bytes());
    let last_start = len - SAMPLE_BLOCK;
    let mut block = vec![0u8; SAMPLE_BLOCK as usize];
    for i in 0..=SAMPLES + 1 {
        f.seek(SeekFrom::Start(last_start * i / (SAMPLES + 1)))?;
        f.read_exact(&mut block)?;
        hasher.update(&block);
    }
    Ok(format!("sampled-{}", hex(&hasher.finalize())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_file_digests_to_the_sha256_of_its_bytes_and_changes_with_them() {
        let dir = std::env::temp_dir().join(format!("gadms-digest-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.bin");
        std::fs::write(&path, b"abc").unwrap();
        assert_eq!(
            file(&path).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        std::fs::write(&path, b"abd!").unwrap();
        assert_eq!(
            file(&path).unwrap(),
            sha256_hex(b"abd!"),
            "a changed file is digested again"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
