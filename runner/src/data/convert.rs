//! `gadms-run dataset convert webperson`: the Hugging Face release of WebPerson
//! (`Kaichengalex/WebPerson-1M` / `-5M`, parquet shards `data/train-*.parquet`) turned into the
//! layout the reference code and the `webperson` plugin read (method spec §7.4): every image
//! under `<root>/images/<image_path>` and one JSON list of `{"<image_path>": {"caption1",
//! "caption2"}}` objects.
//!
//! Converting once costs less than decoding parquet on every load, and keeps parquet out of
//! the plugin. The conversion never holds the corpus in memory: shards are read one at a time,
//! each in batches of whole row groups, image bytes go to disk as they are read (unchanged,
//! not re-encoded), and the JSON is streamed out. Only one 16-byte digest per image path stays
//! in memory, to refuse duplicate paths, which would make the JSON hold a key twice and one
//! image overwrite another.
//!
//! The shards' exact layout is not verified (the spec saw only the dataset card), so the
//! reader takes what it safely can: columns beyond the four it needs are ignored, the HF image
//! struct's `path` field is not read (it is often null; `image_path` names the file), and an
//! `image` column of plain bytes works as well as the struct. Anything else is an error that
//! names the shard, the row or column, and the fix.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Component, Path, PathBuf};

use polars::prelude::*;
use serde::Serialize;
use sha2::{Digest, Sha256};

/// The annotation file's name when none is given: the `webperson` plugin's default
/// `annotations` option, so that a converted folder loads without options.
pub const DEFAULT_ANNOTATIONS: &str = "annotations.json";

/// The columns read from every shard.
const IMAGE: &str = "image";
const IMAGE_PATH: &str = "image_path";
const CAPTION1: &str = "caption1";
const CAPTION2: &str = "caption2";
const COLUMNS: [&str; 4] = [IMAGE, IMAGE_PATH, CAPTION1, CAPTION2];

/// Consecutive row groups are read together up to this many bytes (or one row group when a
/// single one is larger): few enough reads for the HF writer's small image row groups,
/// bounded memory for large ones.
const BATCH_BYTES: usize = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    #[error("{}: no such file or folder; pass the folder the Hugging Face release was downloaded to, or its parquet shards", .0.display())]
    NoSource(PathBuf),
    #[error(
        "{}: no parquet shards found (looked for data/train-*.parquet, then *.parquet); pass the folder \
         the Hugging Face release was downloaded to (the one holding data/), or the shard files themselves",
        .0.display()
    )]
    NoShards(PathBuf),
    #[error(
        "--annotations `{0}`: must be a file name (or relative path) inside the output root, without `..`"
    )]
    AnnotationName(String),
    #[error("{}: {message}: {source}", path.display())]
    Io {
        path: PathBuf,
        message: String,
        source: std::io::Error,
    },
    #[error("{}: cannot read the parquet shard: {source}", shard.display())]
    Parquet { shard: PathBuf, source: PolarsError },
    #[error(
        "{}: missing column `{column}` (columns found: {found}); a WebPerson shard needs `image`, \
         `image_path`, `caption1` and `caption2`: pass the Hugging Face release's train shards",
        shard.display()
    )]
    MissingColumn {
        shard: PathBuf,
        column: &'static str,
        found: String,
    },
    #[error(
        "{}: column `{column}` is {found}, expected {expected}; pass the Hugging Face release's train shards",
        shard.display()
    )]
    ColumnType {
        shard: PathBuf,
        column: &'static str,
        found: String,
        expected: &'static str,
    },
    #[error(
        "{}, row {row} (counting from 0): `{field}` is null; every row needs the image's bytes, its \
         `image_path` and both captions: fix or remove the row and convert again",
        shard.display()
    )]
    Null {
        shard: PathBuf,
        row: usize,
        field: &'static str,
    },
    #[error(
        "{}, row {row} (counting from 0): image_path `{path}` is empty, absolute or has `..`, so the image \
         would not land inside <root>/images/; make it a relative path such as `shard_012/000345678.jpg` \
         and convert again",
        shard.display()
    )]
    UnsafePath {
        shard: PathBuf,
        row: usize,
        path: String,
    },
    #[error(
        "{}, row {row} (counting from 0): image_path `{path}` was already used by {}, row {first_row}; \
         the annotation file would hold the key twice and one image would overwrite the other: remove \
         or rename one of the rows and convert again",
        shard.display(),
        first_shard.display()
    )]
    Duplicate {
        shard: PathBuf,
        row: usize,
        first_shard: PathBuf,
        first_row: usize,
        path: String,
    },
}

pub type Result<T, E = ConvertError> = std::result::Result<T, E>;

/// The shards to convert, in order: each source is a shard file, or a folder whose
/// `data/train-*.parquet` files (the HF layout) or else top-level `*.parquet` files are taken,
/// sorted by name.
pub fn find_shards(sources: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut shards = Vec::new();
    for source in sources {
        if source.is_file() {
            shards.push(source.clone());
        } else if source.is_dir() {
            let hf = parquet_files(&source.join("data"), |name| name.starts_with("train-"))?;
            let found = if hf.is_empty() {
                parquet_files(source, |_| true)?
            } else {
                hf
            };
            if found.is_empty() {
                return Err(ConvertError::NoShards(source.clone()));
            }
            shards.extend(found);
        } else {
            return Err(ConvertError::NoSource(source.clone()));
        }
    }
    Ok(shards)
}

/// The `*.parquet` files directly in `folder` whose names pass `keep`, sorted; none when the
/// folder does not exist.
fn parquet_files(folder: &Path, keep: impl Fn(&str) -> bool) -> Result<Vec<PathBuf>> {
    if !folder.is_dir() {
        return Ok(Vec::new());
    }
    let io = |source| ConvertError::Io {
        path: folder.into(),
        message: "cannot list the folder".into(),
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(folder).map_err(io)? {
        let path = entry.map_err(io)?.path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if name.ends_with(".parquet") && keep(&name) && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// One shard converted.
#[derive(Debug, Clone, PartialEq)]
pub struct ShardDone {
    pub shard: PathBuf,
    /// Its place among the shards, from 1.
    pub number: usize,
    pub of: usize,
    pub images: usize,
    pub image_bytes: u64,
}

/// A whole conversion.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub shards: usize,
    pub images: usize,
    /// Two per image.
    pub captions: usize,
    pub image_bytes: u64,
    /// The annotation file written and its size.
    pub annotations: PathBuf,
    pub annotation_bytes: u64,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "converted {} shard(s): {} images, {} captions; wrote {} bytes of images and {} bytes of \
             annotations ({})",
            self.shards,
            self.images,
            self.captions,
            self.image_bytes,
            self.annotation_bytes,
            self.annotations.display()
        )
    }
}

/// Converts WebPerson `shards` into `root` (created if needed): images to
/// `root/images/<image_path>`, captions to `root/<annotations>`. Existing files of the same
/// names are overwritten. `on_shard` hears of each shard when it is done.
///
/// The annotation file is written under a temporary name and renamed at the end, so a
/// conversion that stops early never leaves a file that looks complete; the images it wrote
/// stay.
pub fn convert_webperson(
    shards: &[PathBuf],
    root: &Path,
    annotations: &str,
    on_shard: impl FnMut(&ShardDone),
) -> Result<Summary> {
    convert_webperson_in_batches(shards, root, annotations, BATCH_BYTES, on_shard)
}

/// [`convert_webperson`], reading consecutive row groups together up to `batch_bytes` (the
/// parquet metadata's uncompressed size) — a single larger row group is read alone. Tests
/// pass small limits to read shards in several batches.
pub fn convert_webperson_in_batches(
    shards: &[PathBuf],
    root: &Path,
    annotations: &str,
    batch_bytes: usize,
    mut on_shard: impl FnMut(&ShardDone),
) -> Result<Summary> {
    let inside = !annotations.is_empty()
        && Path::new(annotations)
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    if !inside {
        return Err(ConvertError::AnnotationName(annotations.into()));
    }
    let images = root.join("images");
    let final_json = root.join(annotations);
    let partial = root.join(format!("{annotations}.partial"));
    create_dir(&images)?;
    if let Some(parent) = final_json.parent() {
        create_dir(parent)?;
    }
    let file = File::create(&partial).map_err(|source| ConvertError::Io {
        path: partial.clone(),
        message: "cannot create the annotation file".into(),
        source,
    })?;
    let mut json = Json::new(BufWriter::new(file), partial.clone());
    let mut converter = Converter {
        shards,
        batch_bytes,
        images,
        folders: HashSet::new(),
        seen: HashMap::new(),
    };
    let result = (|| {
        let mut summary = Summary {
            shards: shards.len(),
            images: 0,
            captions: 0,
            image_bytes: 0,
            annotations: final_json.clone(),
            annotation_bytes: 0,
        };
        for (i, shard) in shards.iter().enumerate() {
            let (images, image_bytes) = converter.shard(i, &mut json)?;
            summary.images += images;
            summary.image_bytes += image_bytes;
            on_shard(&ShardDone {
                shard: shard.clone(),
                number: i + 1,
                of: shards.len(),
                images,
                image_bytes,
            });
        }
        summary.captions = 2 * summary.images;
        summary.annotation_bytes = json.finish()?;
        Ok(summary)
    })();
    match result {
        Ok(summary) => {
            std::fs::rename(&partial, &final_json).map_err(|source| ConvertError::Io {
                path: final_json,
                message: format!("cannot rename {} to it", partial.display()),
                source,
            })?;
            Ok(summary)
        }
        Err(e) => {
            // A half-written list is of no use: the next conversion writes it anew.
            drop(json);
            let _ = std::fs::remove_file(&partial);
            Err(e)
        }
    }
}

fn create_dir(folder: &Path) -> Result<()> {
    std::fs::create_dir_all(folder).map_err(|source| ConvertError::Io {
        path: folder.into(),
        message: "cannot create the folder".into(),
        source,
    })
}

/// The state kept across shards.
struct Converter<'a> {
    shards: &'a [PathBuf],
    batch_bytes: usize,
    images: PathBuf,
    /// Folders under `images` already created.
    folders: HashSet<PathBuf>,
    /// The first 16 bytes of the SHA-256 of each normalised image path → the (shard index,
    /// row) that used it: about 25 bytes a path (200 MB at 5 M), not the paths themselves.
    seen: HashMap<[u8; 16], (u32, u32)>,
}

/// The columns of one batch of rows.
struct Batch {
    bytes: BinaryChunked,
    /// What a null in `bytes` is called: `image.bytes`, or `image` for a plain binary column.
    bytes_name: &'static str,
    /// Per row, whether the whole `image` struct is null (its `bytes` may not say so).
    image_null: Option<BooleanChunked>,
    paths: StringChunked,
    caption1: StringChunked,
    caption2: StringChunked,
}

impl Batch {
    /// The columns of `frame`, whose types [`check_schema`] has checked.
    fn of(frame: &DataFrame) -> PolarsResult<Self> {
        let image = frame.column(IMAGE)?;
        let (bytes, bytes_name, image_null) = match image.dtype() {
            DataType::Struct(_) => {
                let image = image.struct_()?;
                let bytes = image.field_by_name("bytes")?.binary()?.clone();
                (bytes, "image.bytes", Some(image.is_null()))
            }
            _ => (image.binary()?.clone(), IMAGE, None),
        };
        let text = |name| -> PolarsResult<StringChunked> { Ok(frame.column(name)?.str()?.clone()) };
        Ok(Self {
            bytes,
            bytes_name,
            image_null,
            paths: text(IMAGE_PATH)?,
            caption1: text(CAPTION1)?,
            caption2: text(CAPTION2)?,
        })
    }
}

impl Converter<'_> {
    /// Converts shard number `index`; returns its image count and bytes.
    fn shard(&mut self, index: usize, json: &mut Json) -> Result<(usize, u64)> {
        let shard = &self.shards[index];
        let parquet = |source| ConvertError::Parquet {
            shard: shard.clone(),
            source,
        };
        let open = || {
            File::open(shard).map_err(|source| ConvertError::Io {
                path: shard.clone(),
                message: "cannot open the shard".into(),
                source,
            })
        };
        let mut reader = ParquetReader::new(open()?);
        let schema = reader.schema().map_err(parquet)?;
        check_schema(shard, &schema)?;
        let metadata = reader.get_metadata().map_err(parquet)?.clone();

        let groups = metadata
            .row_groups
            .iter()
            .map(|g| (g.num_rows(), g.total_byte_size()));
        let (mut images, mut image_bytes) = (0, 0);
        for (first, rows) in batches(groups, self.batch_bytes) {
            let mut reader = ParquetReader::new(open()?);
            reader.set_metadata(metadata.clone());
            let frame = reader
                .with_columns(Some(COLUMNS.map(String::from).to_vec()))
                .with_slice(Some((first, rows)))
                .read_parallel(ParallelStrategy::RowGroups)
                .finish()
                .map_err(parquet)?;
            let batch = Batch::of(&frame).map_err(parquet)?;
            for i in 0..frame.height() {
                image_bytes += self.row(index, first + i, &batch, i, json)?;
                images += 1;
            }
        }
        Ok((images, image_bytes))
    }

    /// Writes row `i` of `batch`, row `row` of shard `index`: its image file and its JSON
    /// object. Returns the image's size.
    fn row(&mut self, index: usize, row: usize, batch: &Batch, i: usize, json: &mut Json) -> Result<u64> {
        let shard = &self.shards[index];
        let null = |field| ConvertError::Null {
            shard: shard.clone(),
            row,
            field,
        };
        let path = batch.paths.get(i).ok_or_else(|| null(IMAGE_PATH))?;
        let image_null = batch.image_null.as_ref().is_some_and(|n| n.get(i) == Some(true));
        let bytes = match batch.bytes.get(i) {
            Some(bytes) if !image_null => bytes,
            _ => return Err(null(batch.bytes_name)),
        };
        let caption1 = batch.caption1.get(i).ok_or_else(|| null(CAPTION1))?;
        let caption2 = batch.caption2.get(i).ok_or_else(|| null(CAPTION2))?;

        // The paths the plugin accepts: plain names, with `.` allowed (and dropped here).
        let mut parts = Vec::new();
        let mut inside = true;
        for component in Path::new(path).components() {
            match component {
                Component::Normal(part) => parts.push(part),
                Component::CurDir => {}
                _ => inside = false,
            }
        }
        if !inside || parts.is_empty() {
            return Err(ConvertError::UnsafePath {
                shard: shard.clone(),
                row,
                path: path.into(),
            });
        }
        // `a/b.jpg` and `./a/b.jpg` are one file: compare normalised paths.
        let file: PathBuf = parts.iter().collect();
        let digest: [u8; 16] = Sha256::digest(file.as_os_str().as_encoded_bytes())[..16]
            .try_into()
            .expect("a SHA-256 digest has 32 bytes");
        if let Some(&(first_shard, first_row)) = self.seen.get(&digest) {
            return Err(ConvertError::Duplicate {
                shard: shard.clone(),
                row,
                first_shard: self.shards[first_shard as usize].clone(),
                first_row: first_row as usize,
                path: path.into(),
            });
        }
        // Row numbers past u32 would need a shard of over 4 billion rows.
        self.seen.insert(digest, (index as u32, row as u32));

        let target = self.images.join(&file);
        if let Some(parent) = target.parent() {
            if !self.folders.contains(parent) {
                create_dir(parent)?;
                self.folders.insert(parent.to_path_buf());
            }
        }
        std::fs::write(&target, bytes).map_err(|source| ConvertError::Io {
            path: target,
            message: format!("cannot write the image of {}, row {row}", shard.display()),
            source,
        })?;
        json.item(path, caption1, caption2)?;
        Ok(bytes.len() as u64)
    }
}

/// Row groups, as (rows, bytes), gathered into batches of whole row groups, as (first row,
/// rows), each of at most `limit` bytes or one row group. The eager reader has no batched
/// API, but a row slice that covers whole row groups decodes only those.
fn batches(groups: impl Iterator<Item = (usize, usize)>, limit: usize) -> Vec<(usize, usize)> {
    let mut batches = Vec::new();
    let (mut start, mut rows, mut bytes) = (0, 0, 0);
    for (group_rows, group_bytes) in groups {
        if rows > 0 && bytes + group_bytes > limit {
            batches.push((start, rows));
            (start, rows, bytes) = (start + rows, 0, 0);
        }
        rows += group_rows;
        bytes += group_bytes;
    }
    if rows > 0 {
        batches.push((start, rows));
    }
    batches
}

/// Checks that `schema` has the four columns with usable types, before any row is read.
fn check_schema(shard: &Path, schema: &ArrowSchema) -> Result<()> {
    for column in COLUMNS {
        let Some(field) = schema.get(column) else {
            let found: Vec<String> = schema.iter_names().map(|n| format!("`{n}`")).collect();
            return Err(ConvertError::MissingColumn {
                shard: shard.into(),
                column,
                found: found.join(", "),
            });
        };
        let dtype = DataType::from_arrow_field(field);
        let (ok, expected) = match column {
            IMAGE => (
                match &dtype {
                    DataType::Binary => true,
                    DataType::Struct(fields) => fields
                        .iter()
                        .any(|f| f.name() == "bytes" && f.dtype() == &DataType::Binary),
                    _ => false,
                },
                "a struct with a binary field `bytes` (the HF Image feature) or binary",
            ),
            _ => (dtype == DataType::String, "a string"),
        };
        if !ok {
            return Err(ConvertError::ColumnType {
                shard: shard.into(),
                column,
                found: dtype.to_string(),
                expected,
            });
        }
    }
    Ok(())
}

/// The annotation list, written as it grows: `[`, one `{"<path>": {"caption1": …,
/// "caption2": …}}` object per line, `]`.
struct Json {
    out: BufWriter<File>,
    path: PathBuf,
    items: usize,
}

#[derive(Serialize)]
struct Captions<'a> {
    caption1: &'a str,
    caption2: &'a str,
}

impl Json {
    fn new(out: BufWriter<File>, path: PathBuf) -> Self {
        Self { out, path, items: 0 }
    }

    fn io(&self, source: std::io::Error) -> ConvertError {
        ConvertError::Io {
            path: self.path.clone(),
            message: "cannot write the annotation file".into(),
            source,
        }
    }

    fn item(&mut self, path: &str, caption1: &str, caption2: &str) -> Result<()> {
        let separator: &[u8] = if self.items == 0 { b"[\n{" } else { b",\n{" };
        self.out.write_all(separator).map_err(|e| self.io(e))?;
        serde_json::to_writer(&mut self.out, path).map_err(|e| self.io(e.into()))?;
        self.out.write_all(b": ").map_err(|e| self.io(e))?;
        serde_json::to_writer(&mut self.out, &Captions { caption1, caption2 })
            .map_err(|e| self.io(e.into()))?;
        self.out.write_all(b"}").map_err(|e| self.io(e))?;
        self.items += 1;
        Ok(())
    }

    /// Closes the list and flushes; returns the file's size.
    fn finish(&mut self) -> Result<u64> {
        let end: &[u8] = if self.items == 0 { b"[]\n" } else { b"\n]\n" };
        self.out.write_all(end).map_err(|e| self.io(e))?;
        self.out.flush().map_err(|e| self.io(e))?;
        let file = self.out.get_ref();
        file.sync_all().map_err(|e| self.io(e))?;
        Ok(file.metadata().map_err(|e| self.io(e))?.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_groups_gather_into_batches_up_to_the_limit() {
        let groups = [(3, 40), (2, 40), (4, 200), (1, 10), (1, 10)];
        assert_eq!(
            batches(groups.into_iter(), 100),
            [(0, 5), (5, 4), (9, 2)],
            "a group over the limit is read alone"
        );
        assert_eq!(
            batches(groups.into_iter(), 1),
            [(0, 3), (3, 2), (5, 4), (9, 1), (10, 1)]
        );
        assert_eq!(batches(groups.into_iter(), usize::MAX), [(0, 11)]);
        assert_eq!(batches(std::iter::empty(), 1), []);
        // Empty row groups join a batch without splitting it.
        assert_eq!(batches([(0, 0), (2, 5)].into_iter(), 1), [(0, 2)]);
    }
}
