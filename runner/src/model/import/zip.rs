//! A reader for the zip archives that `torch.save` and `torch.jit.save` write. PyTorch stores
//! every entry uncompressed (so tensors can be memory-mapped), with zip64 sizes and offsets
//! for large files; that is all this reader understands, which keeps it small. A compressed
//! entry is an error naming it.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::ImportError;

const LOCAL_HEADER: u32 = 0x0403_4b50;
const CENTRAL_HEADER: u32 = 0x0201_4b50;
const END_OF_DIRECTORY: u32 = 0x0605_4b50;
const ZIP64_LOCATOR: u32 = 0x0706_4b50;
const ZIP64_END: u32 = 0x0606_4b50;
/// The end-of-directory record is 22 bytes followed by a comment of at most 65535 bytes.
const MAX_TAIL: u64 = 22 + 65535;

/// The first bytes of every zip archive (a local file header).
pub const MAGIC: &[u8; 4] = b"PK\x03\x04";

#[derive(Debug)]
struct Entry {
    name: String,
    /// 0 = stored; anything else is compressed.
    method: u16,
    size: u64,
    /// Offset of the entry's local header.
    header: u64,
}

/// An open archive: its central directory, read once.
#[derive(Debug)]
pub struct Archive {
    file: File,
    path: PathBuf,
    len: u64,
    entries: Vec<Entry>,
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

impl Archive {
    pub fn open(path: &Path) -> Result<Self, ImportError> {
        let file = File::open(path).map_err(|source| ImportError::io(path, source))?;
        let len = file
            .metadata()
            .map_err(|source| ImportError::io(path, source))?
            .len();
        let mut archive = Self {
            file,
            path: path.to_path_buf(),
            len,
            entries: Vec::new(),
        };
        archive.entries = archive.read_directory()?;
        Ok(archive)
    }

    /// Names of every entry, in the archive's order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|e| e.name.as_str())
    }

    fn truncated(&self, what: &str) -> ImportError {
        ImportError::Truncated {
            file: self.path.clone(),
            what: what.to_string(),
        }
    }

    fn malformed(&self, message: String) -> ImportError {
        ImportError::Malformed {
            file: self.path.clone(),
            message: format!("zip archive: {message}"),
        }
    }

    /// `len` bytes at `offset`, or a truncation error saying what was being read.
    fn bytes_at(&mut self, offset: u64, len: u64, what: &str) -> Result<Vec<u8>, ImportError> {
        if offset.checked_add(len).is_none_or(|end| end > self.len) {
            return Err(self.truncated(what));
        }
        let mut buf = vec![0; len as usize];
        self.file
            .seek(SeekFrom::Start(offset))
            .and_then(|_| self.file.read_exact(&mut buf))
            .map_err(|source| ImportError::io(&self.path, source))?;
        Ok(buf)
    }

    fn read_directory(&mut self) -> Result<Vec<Entry>, ImportError> {
        let tail_len = self.len.min(MAX_TAIL);
        let tail = self.bytes_at(self.len - tail_len, tail_len, "the archive's end record")?;
        let eocd = (0..tail.len().saturating_sub(21))
            .rev()
            .find(|&i| u32_at(&tail, i) == END_OF_DIRECTORY)
            .ok_or_else(|| {
                self.truncated("no end-of-directory record (the end of the archive is missing)")
            })?;
        let eocd_at = self.len - tail_len + eocd as u64;
        let end = &tail[eocd..];
        let (mut count, mut dir_size, mut dir_at) = (
            u16_at(end, 10) as u64,
            u32_at(end, 12) as u64,
            u32_at(end, 16) as u64,
        );
        if count == 0xffff || dir_size == 0xffff_ffff || dir_at == 0xffff_ffff {
            let locator = self.bytes_at(eocd_at.saturating_sub(20), 20, "the zip64 locator")?;
            if u32_at(&locator, 0) != ZIP64_LOCATOR {
                return Err(self.malformed("a zip64 archive without its zip64 locator".into()));
            }
            let record = self.bytes_at(u64_at(&locator, 8), 56, "the zip64 end record")?;
            if u32_at(&record, 0) != ZIP64_END {
                return Err(self.malformed("the zip64 end record is not where its locator says".into()));
            }
            (count, dir_size, dir_at) = (u64_at(&record, 32), u64_at(&record, 40), u64_at(&record, 48));
        }
        let dir = self.bytes_at(dir_at, dir_size, "the central directory")?;
        let mut entries = Vec::new();
        let mut at = 0;
        for _ in 0..count {
            if at + 46 > dir.len() || u32_at(&dir, at) != CENTRAL_HEADER {
                return Err(self.malformed(format!("central directory entry {} is malformed", entries.len())));
            }
            let (name_len, extra_len, comment_len) = (
                u16_at(&dir, at + 28) as usize,
                u16_at(&dir, at + 30) as usize,
                u16_at(&dir, at + 32) as usize,
            );
            let next = at + 46 + name_len + extra_len + comment_len;
            if next > dir.len() {
                return Err(self.malformed(format!("central directory entry {} overruns it", entries.len())));
            }
            let name = String::from_utf8_lossy(&dir[at + 46..at + 46 + name_len]).into_owned();
            let mut size = u32_at(&dir, at + 24) as u64;
            let mut compressed = u32_at(&dir, at + 20) as u64;
            let mut header = u32_at(&dir, at + 42) as u64;
            let extra = &dir[at + 46 + name_len..at + 46 + name_len + extra_len];
            zip64_fields(extra, [&mut size, &mut compressed, &mut header]);
            entries.push(Entry {
                name,
                method: u16_at(&dir, at + 10),
                size,
                header,
            });
            at = next;
        }
        Ok(entries)
    }

    /// The content of the entry `name`.
    pub fn read(&mut self, name: &str) -> Result<Vec<u8>, ImportError> {
        let entry = self
            .entries
            .iter()
            .find(|e| e.name == name)
            .ok_or_else(|| self.malformed(format!("no entry `{name}`")))?;
        let (method, size, header) = (entry.method, entry.size, entry.header);
        if method != 0 {
            return Err(self.malformed(format!(
                "entry `{name}` is compressed (method {method}); PyTorch writes stored entries, so re-save \
                 the file with torch.save instead of re-zipping it"
            )));
        }
        let local = self.bytes_at(header, 30, &format!("the header of entry `{name}`"))?;
        if u32_at(&local, 0) != LOCAL_HEADER {
            return Err(self.malformed(format!("entry `{name}` has no local header")));
        }
        let data_at = header + 30 + u16_at(&local, 26) as u64 + u16_at(&local, 28) as u64;
        self.bytes_at(data_at, size, &format!("entry `{name}` ({size} bytes)"))
    }
}

/// Replaces the 32-bit sizes and offset that are saturated (0xffffffff) by their 64-bit
/// values from the zip64 extra field (id 1), which lists only the saturated ones, in this
/// order: uncompressed size, compressed size, header offset.
fn zip64_fields(mut extra: &[u8], fields: [&mut u64; 3]) {
    while extra.len() >= 4 {
        let (id, len) = (u16_at(extra, 0), u16_at(extra, 2) as usize);
        let body = &extra[4..(4 + len).min(extra.len())];
        if id == 1 {
            let mut values = body.chunks_exact(8).map(|c| u64_at(c, 0));
            for field in fields.into_iter().filter(|f| **f == 0xffff_ffff) {
                *field = values.next().unwrap_or(*field);
            }
            return;
        }
        extra = &extra[(4 + len).min(extra.len())..];
    }
}
