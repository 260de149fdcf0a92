//! Image folders as tables: each image a row of `image` (its pixels as channel-first bytes,
//! with the shape in the field's metadata), `path` (the file, to carry through to outputs
//! with `--keep-columns path`) and, where the images lie in class folders, `label` (the
//! folder's name; the classes in the folders' natural order, as the in-memory reader has
//! them). A folder with `train/` and `test/` gives those splits.
//!
//! A chunk is [`IMAGE_CHUNK_FILES`] consecutive files, decoded when it is read, in parallel on
//! a pool of threads of its own (at the reader's lowered priority): the pool the training
//! kernels share would queue the step's work behind the decoding.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use arrow::array::{ArrayRef, FixedSizeListArray, RecordBatch, StringArray, UInt8Array};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use rayon::prelude::*;

use super::{
    CLASS_NAMES_KEY, LABEL_KEY, TableFile, arrow_error, field_shape, file_stamp, shaped_field,
};
use crate::data::Split;
use crate::data::images::{EXTENSIONS, is_image, read_image_bytes, shape_mismatch, sorted_entries};
use crate::error::{Error, Result};

/// Files per chunk: the unit an image folder is shuffled, decoded and resumed in.
pub const IMAGE_CHUNK_FILES: usize = 64;
/// The pixels column.
pub const PIXELS: &str = "image";
/// The file column.
pub const FILE: &str = "path";
/// The class column, when the images lie in class folders.
pub const CLASS: &str = "label";

/// What to do with a file that cannot be decoded as an image.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum BadImages {
    /// Stop, naming the file.
    #[default]
    Refuse,
    /// Leave it out, and say how many were left out.
    Skip,
}

/// The folder a split of the image folder `dir` streams: `train/` or `test/` where both
/// exist, else `dir` itself.
pub fn split_folder(dir: &Path, split: Split) -> PathBuf {
    let (train, test) = (dir.join("train"), dir.join("test"));
    match (train.is_dir() && test.is_dir(), split) {
        (true, Split::Train) => train,
        (true, Split::Test) => test,
        (false, _) => dir.to_path_buf(),
    }
}

/// The images of `dir`: directly in it (unlabelled), or one level down in class folders,
/// each file with its class as the partition value of [`CLASS`]; and the class names.
pub fn list(dir: &Path) -> Result<(Vec<TableFile>, Option<Vec<String>>)> {
    if !dir.is_dir() {
        return Err(Error::bad_file(dir, "is not a folder of images"));
    }
    let entries = sorted_entries(dir)?;
    let class_dirs: Vec<&PathBuf> = entries
        .iter()
        .filter(|p| {
            p.is_dir()
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    let loose: Vec<&PathBuf> = entries.iter().filter(|p| is_image(p)).collect();
    let stamp = |path: &Path, class: Option<&str>| -> Result<TableFile> {
        let (bytes, modified_ns) = file_stamp(path)?;
        Ok(TableFile {
            path: path.to_path_buf(),
            partitions: class
                .map(|c| vec![(CLASS.to_string(), c.to_string())])
                .unwrap_or_default(),
            bytes,
            modified_ns,
        })
    };
    let (files, classes) = if class_dirs.is_empty() {
        let files = loose
            .iter()
            .map(|p| stamp(p, None))
            .collect::<Result<Vec<_>>>()?;
        (files, None)
    } else {
        if let Some(stray) = loose.first() {
            return Err(Error::bad_file(
                stray,
                "lies beside class folders: put every image in a class folder, or none",
            ));
        }
        let mut files = Vec::new();
        let mut names = Vec::new();
        for d in class_dirs {
            let name = d
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .to_string();
            for p in sorted_entries(d)?.into_iter().filter(|p| is_image(p)) {
                files.push(stamp(&p, Some(&name))?);
            }
            names.push(name);
        }
        (files, Some(names))
    };
    if files.is_empty() {
        return Err(Error::bad_file(
            dir,
            format!("holds no images ({})", EXTENSIONS.join(", ")),
        ));
    }
    Ok((files, classes))
}

/// The table's schema, from the shape of its first image that decodes: pixels, file and, for
/// class folders, the class.
pub fn schema(
    files: &[TableFile],
    classes: Option<&[String]>,
    bad: BadImages,
) -> Result<SchemaRef> {
    let mut first = None;
    for f in files {
        match read_image_bytes(&f.path) {
            Ok((shape, _)) => {
                first = Some(shape);
                break;
            }
            Err(e) if bad == BadImages::Refuse => return Err(e),
            Err(_) => {}
        }
    }
    let shape = first
        .ok_or_else(|| Error::bad_file(&files[0].path, "no image of the folder can be decoded"))?;
    let width: usize = shape.iter().product();
    let pixels = shaped_field(
        PIXELS,
        DataType::FixedSizeList(
            Arc::new(Field::new_list_field(DataType::UInt8, false)),
            width as i32,
        ),
        &shape,
    );
    let mut metadata = std::collections::HashMap::new();
    if let Some(classes) = classes {
        metadata.insert(LABEL_KEY.to_string(), CLASS.to_string());
        metadata.insert(
            CLASS_NAMES_KEY.to_string(),
            serde_json::to_string(classes).expect("strings serialise"),
        );
    }
    let mut fields = vec![pixels, Field::new(FILE, DataType::Utf8, false)];
    if classes.is_some() {
        fields.push(Field::new(CLASS, DataType::Utf8, false));
    }
    Ok(Arc::new(Schema::new_with_metadata(fields, metadata)))
}

/// The pool images are decoded on.
fn decode_pool() -> &'static rayon::ThreadPool {
    static POOL: OnceLock<rayon::ThreadPool> = OnceLock::new();
    POOL.get_or_init(|| {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("aekit-decode-{i}"))
            .start_handler(|_| super::feed::yield_to_training())
            .build()
            .expect("a thread pool of available_parallelism threads starts")
    })
}

/// The files of chunk `part` of `files`.
pub fn chunk_files(files: &[TableFile], part: usize) -> &[TableFile] {
    let start = (part * IMAGE_CHUNK_FILES).min(files.len());
    &files[start..(start + IMAGE_CHUNK_FILES).min(files.len())]
}

/// Decodes `files` (one chunk) into one record batch of the table's schema `schema`, the
/// class column from each file's folder; an image that does not decode stops the read
/// with its name, or is left out under [`BadImages::Skip`]. An image of another shape than
/// the schema's always stops it.
pub fn read(files: &[TableFile], schema: &SchemaRef, bad: BadImages) -> Result<RecordBatch> {
    let DataType::FixedSizeList(item, width) = schema.field(0).data_type() else {
        unreachable!("an image table's first column is its pixels")
    };
    let shape = field_shape(schema.field(0)).expect("written by schema()");
    let decoded: Vec<Result<(Vec<usize>, Vec<u8>)>> = decode_pool().install(|| {
        files
            .par_iter()
            .map(|f| read_image_bytes(&f.path))
            .collect()
    });
    let mut pixels = Vec::with_capacity(files.len() * *width as usize);
    let mut names = Vec::with_capacity(files.len());
    let mut classes = Vec::with_capacity(files.len());
    for (f, image) in files.iter().zip(decoded) {
        match image {
            Ok((s, bytes)) => {
                if let Some(msg) = shape_mismatch(&s, &shape, Path::new("the first image")) {
                    return Err(Error::bad_file(&f.path, msg));
                }
                pixels.extend_from_slice(&bytes);
                names.push(f.path.to_string_lossy().to_string());
                classes.extend(f.partitions.first().map(|p| p.1.clone()));
            }
            Err(Error::BadFile { path, msg }) if bad == BadImages::Refuse => {
                return Err(Error::bad_file(
                    path,
                    format!("{msg} (leave such files out with --bad-images skip)"),
                ));
            }
            Err(e) if bad == BadImages::Refuse => return Err(e),
            Err(_) => {}
        }
    }
    let values = Arc::new(UInt8Array::from(pixels)) as ArrayRef;
    let list = FixedSizeListArray::try_new(item.clone(), *width, values, None)
        .map_err(|e| arrow_error(&files[0].path, "", e))?;
    let mut columns: Vec<ArrayRef> = vec![Arc::new(list), Arc::new(StringArray::from(names))];
    if schema.fields().len() > 2 {
        columns.push(Arc::new(StringArray::from(classes)));
    }
    RecordBatch::try_new(schema.clone(), columns).map_err(|e| arrow_error(&files[0].path, "", e))
}

/// The first file of `files` that does not decode, for the message that counts the skipped.
pub fn first_undecodable(files: &[TableFile]) -> Option<&Path> {
    files
        .iter()
        .find(|f| read_image_bytes(&f.path).is_err())
        .map(|f| f.path.as_path())
}
