//! Safetensors files: an 8-byte little-endian header length, a JSON header, the data. The
//! header is checked against the file's length, so a truncated download is reported as
//! truncated rather than as a parser error.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use super::ImportError;

/// Whether the first bytes of a file look like a safetensors header (`{` after the length).
pub fn looks_like(start: &[u8]) -> bool {
    start.len() > 8 && start[8] == b'{'
}

/// Checks that the header parses and that every tensor's bytes lie inside the file.
pub fn check(file: &Path) -> Result<(), ImportError> {
    let io = |source| ImportError::io(file, source);
    let mut f = File::open(file).map_err(io)?;
    let len = f.metadata().map_err(io)?.len();
    let truncated = |what: String| ImportError::Truncated {
        file: file.to_path_buf(),
        what,
    };
    let mut head = [0u8; 8];
    f.read_exact(&mut head).map_err(io)?;
    let header_len = u64::from_le_bytes(head);
    if header_len > len.saturating_sub(8) {
        return Err(truncated(format!(
            "a {header_len}-byte header in a {len}-byte file"
        )));
    }
    let mut header = vec![0; header_len as usize];
    f.read_exact(&mut header).map_err(io)?;
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&header).map_err(|e| ImportError::Malformed {
            file: file.to_path_buf(),
            message: format!("safetensors header: {e}"),
        })?;
    let data_end = header
        .iter()
        .filter(|(k, _)| *k != "__metadata__")
        .filter_map(|(_, v)| v["data_offsets"][1].as_u64())
        .max()
        .unwrap_or(0);
    let end = (8 + header_len).saturating_add(data_end);
    if end > len {
        return Err(truncated(format!(
            "the tensors end at byte {end}, the file has {len}"
        )));
    }
    Ok(())
}
