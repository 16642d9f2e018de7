//! The spool's on-disk format.
//!
//! An entry with sequence number `seq` is two files in the spool directory:
//! `{seq:020}.data` (the body) and `{seq:020}.json` (a [`EntryMeta`]). Each is written to a
//! temporary file, fsynced and renamed into place, the data first and the meta last, and the
//! directory is fsynced after each rename. So the meta file exists only once both are durable:
//! **an entry exists iff its `.json` exists**. Removal goes the other way (meta first), so a
//! crash at any point leaves either a whole entry or an orphan `.data` that [`scan`] removes.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::local::{TMP_PREFIX, sync_dir, write_atomically};
use crate::{StorageError, validate_key};

/// The meta file of one entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct EntryMeta {
    pub(crate) seq: u64,
    pub(crate) key: String,
    pub(crate) content_type: String,
    /// Length of the `.data` file, checked on resume.
    pub(crate) len: u64,
}

pub(crate) fn data_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:020}.data"))
}

pub(crate) fn meta_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:020}.json"))
}

/// Writes an entry durably: data, then meta. On failure nothing that [`scan`] would resume is
/// left behind.
pub(crate) fn write_entry(dir: &Path, meta: &EntryMeta, body: &[u8]) -> io::Result<()> {
    let data = data_path(dir, meta.seq);
    write_atomically(&data, body)?;
    let json = serde_json::to_vec(meta).map_err(io::Error::other)?;
    if let Err(e) = write_atomically(&meta_path(dir, meta.seq), &json) {
        let _ = fs::remove_file(&data);
        return Err(e);
    }
    Ok(())
}

/// Removes an entry: meta first (the entry is gone from then on), then data.
pub(crate) fn remove_entry(dir: &Path, seq: u64) -> io::Result<()> {
    remove_if_present(&meta_path(dir, seq))?;
    remove_if_present(&data_path(dir, seq))?;
    sync_dir(dir)
}

pub(crate) fn read_data(dir: &Path, seq: u64) -> io::Result<Vec<u8>> {
    fs::read(data_path(dir, seq))
}

fn remove_if_present(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// What [`scan`] found in a spool directory.
#[derive(Debug, Default)]
pub(crate) struct Scan {
    /// Whole entries to resume, by sequence number.
    pub(crate) entries: BTreeMap<u64, EntryMeta>,
    /// One past the highest sequence number seen in any file name.
    pub(crate) next_seq: u64,
}

/// Creates `dir` if needed, removes temporary files and orphan `.data` files, and reads every
/// whole entry. Entries whose meta does not parse or whose data has the wrong length are
/// logged and left on disk untouched (never uploaded, never deleted).
pub(crate) fn scan(dir: &Path) -> Result<Scan, StorageError> {
    let shown = dir.display().to_string();
    let io_err = |e| StorageError::io(&shown, e);
    fs::create_dir_all(dir).map_err(io_err)?;
    let mut metas = BTreeSet::new();
    let mut datas = BTreeSet::new();
    let mut removed = false;
    for entry in fs::read_dir(dir).map_err(io_err)? {
        let entry = entry.map_err(io_err)?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if name.starts_with(TMP_PREFIX) {
            tracing::debug!(file = %name, "spool: removing an incomplete write");
            fs::remove_file(entry.path()).map_err(io_err)?;
            removed = true;
        } else if let Some(seq) = parse_name(&name, ".json") {
            metas.insert(seq);
        } else if let Some(seq) = parse_name(&name, ".data") {
            datas.insert(seq);
        } else {
            tracing::debug!(file = %name, "spool: ignoring a file that is not an entry");
        }
    }

    let mut scan = Scan {
        next_seq: metas
            .iter()
            .chain(datas.iter())
            .max()
            .map_or(0, |max| max + 1),
        ..Scan::default()
    };
    for &seq in &datas {
        if !metas.contains(&seq) {
            // Crashed before its meta was written (enqueue never returned Ok) or while it was
            // removed after its upload: either way nothing to upload.
            tracing::debug!(seq, "spool: removing data without meta");
            fs::remove_file(data_path(dir, seq)).map_err(io_err)?;
            removed = true;
        }
    }
    for &seq in &metas {
        if !datas.contains(&seq) {
            // Removal deletes the meta first, so only a hand can leave a meta alone: it has
            // nothing to upload.
            tracing::error!(seq, dir = %shown, "spool: removing a meta without data");
            fs::remove_file(meta_path(dir, seq)).map_err(io_err)?;
            removed = true;
            continue;
        }
        match read_meta(dir, seq) {
            Ok(meta) => {
                scan.entries.insert(seq, meta);
            }
            Err(reason) => {
                tracing::error!(
                    seq,
                    dir = %shown,
                    %reason,
                    "spool: entry left on disk, not uploaded"
                );
            }
        }
    }
    if removed {
        sync_dir(dir).map_err(io_err)?;
    }
    Ok(scan)
}

fn read_meta(dir: &Path, seq: u64) -> Result<EntryMeta, String> {
    let bytes = fs::read(meta_path(dir, seq)).map_err(|e| format!("reading the meta: {e}"))?;
    let meta: EntryMeta =
        serde_json::from_slice(&bytes).map_err(|e| format!("parsing the meta: {e}"))?;
    if meta.seq != seq {
        return Err(format!("meta says seq {} in the file of {seq}", meta.seq));
    }
    validate_key(&meta.key).map_err(|e| e.to_string())?;
    let len = fs::metadata(data_path(dir, seq))
        .map_err(|e| format!("data file: {e}"))?
        .len();
    if len != meta.len {
        return Err(format!("data has {len} bytes, meta says {}", meta.len));
    }
    Ok(meta)
}

/// `00000000000000000042.json` -> 42.
fn parse_name(name: &str, ext: &str) -> Option<u64> {
    let digits = name.strip_suffix(ext)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(seq: u64, key: &str, len: u64) -> EntryMeta {
        EntryMeta {
            seq,
            key: key.to_owned(),
            content_type: "video/mp4".to_owned(),
            len,
        }
    }

    #[test]
    fn names_parse() {
        assert_eq!(parse_name("00000000000000000042.json", ".json"), Some(42));
        assert_eq!(parse_name("00000000000000000042.data", ".json"), None);
        assert_eq!(parse_name("42.json", ".json"), None);
        assert_eq!(parse_name("0000000000000000004x.json", ".json"), None);
    }

    #[test]
    fn scan_keeps_whole_entries_and_cleans_the_rest() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        write_entry(d, &meta(3, "a/1.m4s", 3), b"abc").expect("write");
        write_entry(d, &meta(7, "a/2.m4s", 0), b"").expect("write");
        // A crash between the data and the meta.
        fs::write(data_path(d, 9), b"half").expect("write");
        // A crash in the middle of a temporary write.
        fs::write(d.join(format!("{TMP_PREFIX}1.2")), b"tmp").expect("write");
        // A corrupt entry: kept on disk, not resumed.
        fs::write(data_path(d, 5), b"xy").expect("write");
        fs::write(meta_path(d, 5), b"{not json").expect("write");
        // A meta whose data was removed by hand.
        fs::write(meta_path(d, 8), b"{}").expect("write");
        // Wrong length.
        write_entry(d, &meta(6, "a/3.m4s", 10), b"short").expect("write");

        let scan = scan(d).expect("scan");
        assert_eq!(scan.entries.keys().copied().collect::<Vec<_>>(), [3, 7]);
        assert_eq!(scan.entries[&3], meta(3, "a/1.m4s", 3));
        assert_eq!(scan.next_seq, 10);
        assert!(!data_path(d, 9).exists());
        assert!(!meta_path(d, 8).exists());
        assert!(!d.join(format!("{TMP_PREFIX}1.2")).exists());
        assert!(data_path(d, 5).exists() && meta_path(d, 5).exists());
        assert!(data_path(d, 6).exists() && meta_path(d, 6).exists());

        remove_entry(d, 3).expect("remove");
        assert!(!data_path(d, 3).exists() && !meta_path(d, 3).exists());
        remove_entry(d, 3).expect("removing twice is fine");
    }

    #[test]
    fn scan_creates_the_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let scan = scan(&dir.path().join("a/b")).expect("scan");
        assert!(scan.entries.is_empty());
        assert_eq!(scan.next_seq, 0);
    }
}
