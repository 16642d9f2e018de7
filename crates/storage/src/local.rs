//! The local-directory backend of [`ObjectStore`](crate::ObjectStore).
//!
//! Blocking `std::fs` calls run in `spawn_blocking`, one hop per operation. Keys were validated
//! by the caller, so `root.join(key)` never leaves `root`.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;

use crate::error::is_missing;
use crate::{ByteRange, Object, ObjectMeta, StorageError, content_type_for};

/// Names of in-progress writes start with this; listings skip them.
pub(crate) const TMP_PREFIX: &str = ".greenroom-tmp.";

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

pub(crate) struct LocalStore {
    root: PathBuf,
}

impl LocalStore {
    pub(crate) fn open(dir: PathBuf) -> Result<LocalStore, StorageError> {
        let shown = dir.display().to_string();
        fs::create_dir_all(&dir).map_err(|e| StorageError::io(&shown, e))?;
        let root = dir
            .canonicalize()
            .map_err(|e| StorageError::io(&shown, e))?;
        Ok(LocalStore { root })
    }

    pub(crate) fn describe(&self) -> String {
        format!("local:{}", self.root.display())
    }

    fn path(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }

    pub(crate) async fn put(&self, key: &str, body: Bytes) -> Result<(), StorageError> {
        if is_tmp_name(file_name(key)) {
            return Err(StorageError::InvalidKey {
                key: key.to_owned(),
                reason: "names a temporary file of the local store",
            });
        }
        let path = self.path(key);
        let owned_key = key.to_owned();
        blocking(key, move || {
            write_atomically(&path, &body).map_err(|e| StorageError::io(owned_key, e))
        })
        .await
    }

    pub(crate) async fn get(
        &self,
        key: &str,
        range: Option<ByteRange>,
    ) -> Result<Object, StorageError> {
        let path = self.path(key);
        let owned_key = key.to_owned();
        blocking(key, move || read_object(&path, &owned_key, range)).await
    }

    pub(crate) async fn head(&self, key: &str) -> Result<ObjectMeta, StorageError> {
        let path = self.path(key);
        let owned_key = key.to_owned();
        blocking(key, move || {
            let meta =
                fs::metadata(&path).map_err(|e| StorageError::io_or_not_found(&owned_key, e))?;
            if !meta.is_file() {
                return Err(StorageError::NotFound { key: owned_key });
            }
            Ok(ObjectMeta {
                key: owned_key,
                len: meta.len(),
            })
        })
        .await
    }

    pub(crate) async fn delete(&self, key: &str) -> Result<(), StorageError> {
        let path = self.path(key);
        let root = self.root.clone();
        let owned_key = key.to_owned();
        blocking(key, move || {
            match fs::symlink_metadata(&path) {
                Ok(meta) if meta.is_dir() => return Ok(()), // a "directory" is no object
                Ok(_) => {}
                Err(e) if is_missing(&e) => return Ok(()),
                Err(e) => return Err(StorageError::io(owned_key, e)),
            }
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if is_missing(&e) => return Ok(()),
                Err(e) => return Err(StorageError::io(owned_key, e)),
            }
            prune_empty_dirs(&root, path.parent());
            Ok(())
        })
        .await
    }

    pub(crate) async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StorageError> {
        let root = self.root.clone();
        let owned_prefix = prefix.to_owned();
        blocking(prefix, move || list_files(&root, &owned_prefix)).await
    }

    pub(crate) async fn delete_prefix(&self, prefix: &str) -> Result<u64, StorageError> {
        let root = self.root.clone();
        let owned_prefix = prefix.to_owned();
        blocking(prefix, move || {
            let mut deleted = 0;
            let mut parents = BTreeSet::new();
            for object in list_files(&root, &owned_prefix)? {
                let path = root.join(&object.key);
                match fs::remove_file(&path) {
                    Ok(()) => deleted += 1,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(StorageError::io(object.key, e)),
                }
                if let Some(parent) = path.parent() {
                    parents.insert(parent.to_path_buf());
                }
            }
            // Deepest first, so a parent is tried after its children are gone.
            for dir in parents.iter().rev() {
                prune_empty_dirs(&root, Some(dir));
            }
            Ok(deleted)
        })
        .await
    }
}

/// Runs blocking file-system work off the async threads.
async fn blocking<T, F>(key: &str, work: F) -> Result<T, StorageError>
where
    F: FnOnce() -> Result<T, StorageError> + Send + 'static,
    T: Send + 'static,
{
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result,
        Err(join) => Err(StorageError::io(key, io::Error::other(join.to_string()))),
    }
}

fn file_name(key: &str) -> &str {
    key.rsplit('/').next().unwrap_or(key)
}

fn is_tmp_name(name: &str) -> bool {
    name.starts_with(TMP_PREFIX)
}

/// Writes `body` to a temporary file beside `path`, fsyncs it, renames it over `path` and
/// fsyncs the directory. Parent directories are created.
pub(crate) fn write_atomically(path: &Path, body: &[u8]) -> io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::other("path has no parent directory"))?;
    fs::create_dir_all(dir)?;
    let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!("{TMP_PREFIX}{}.{n}", std::process::id()));
    let written = (|| {
        let mut file = File::create(&tmp)?;
        file.write_all(body)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    sync_dir(dir)
}

/// Makes a rename or a removal in `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn read_object(path: &Path, key: &str, range: Option<ByteRange>) -> Result<Object, StorageError> {
    let mut file = File::open(path).map_err(|e| StorageError::io_or_not_found(key, e))?;
    let meta = file.metadata().map_err(|e| StorageError::io(key, e))?;
    if !meta.is_file() {
        return Err(StorageError::NotFound {
            key: key.to_owned(),
        });
    }
    let total_len = meta.len();
    let (start, end_exclusive, served) = match range {
        None => (0, total_len, None),
        Some(range) => {
            let (start, end) = range.resolve(total_len)?;
            (start, end + 1, Some((start, end)))
        }
    };
    let len = usize::try_from(end_exclusive - start)
        .map_err(|_| StorageError::io(key, io::Error::other("object too large for memory")))?;
    let mut body = vec![0u8; len];
    file.seek(SeekFrom::Start(start))
        .and_then(|_| file.read_exact(&mut body))
        .map_err(|e| StorageError::io(key, e))?;
    Ok(Object {
        body: Bytes::from(body),
        total_len,
        range: served,
        content_type: content_type_for(key).to_owned(),
    })
}

/// Every regular file under `root` whose key starts with `prefix`. Only the directory named by
/// the prefix's part up to its last `/` is walked. Symlinks, temporary files and names that are
/// not UTF-8 are skipped.
fn list_files(root: &Path, prefix: &str) -> Result<Vec<ObjectMeta>, StorageError> {
    let dir_part = match prefix.rfind('/') {
        Some(i) => &prefix[..=i],
        None => "",
    };
    let mut out = Vec::new();
    let mut stack = vec![(root.join(dir_part), dir_part.to_owned())];
    while let Some((dir, dir_key)) = stack.pop() {
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            // The prefix names no directory (or a file): nothing under it.
            Err(e) if is_missing(&e) => continue,
            Err(e) => return Err(StorageError::io(dir_key, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| StorageError::io(&dir_key, e))?;
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            let key = format!("{dir_key}{name}");
            let file_type = entry.file_type().map_err(|e| StorageError::io(&key, e))?;
            if file_type.is_dir() {
                // Only descend where keys can still match the prefix.
                let sub = format!("{key}/");
                if sub.starts_with(prefix) || prefix.starts_with(&sub) {
                    stack.push((entry.path(), sub));
                }
            } else if file_type.is_file() && !is_tmp_name(&name) && key.starts_with(prefix) {
                let meta = entry.metadata().map_err(|e| StorageError::io(&key, e))?;
                out.push(ObjectMeta {
                    key,
                    len: meta.len(),
                });
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Removes `dir` and its parents while they are empty, stopping at `root` (kept).
fn prune_empty_dirs(root: &Path, dir: Option<&Path>) {
    let mut dir = dir;
    while let Some(d) = dir {
        if d == root || !d.starts_with(root) || fs::remove_dir(d).is_err() {
            break;
        }
        dir = d.parent();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ObjectStore;

    fn store() -> (tempfile::TempDir, ObjectStore) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = ObjectStore::local(dir.path().join("root")).expect("local store");
        (dir, store)
    }

    async fn keys(store: &ObjectStore, prefix: &str) -> Vec<String> {
        let list = store.list(prefix).await.expect("list");
        list.into_iter().map(|m| m.key).collect()
    }

    #[tokio::test]
    async fn put_get_head_round_trip() {
        let (_dir, store) = store();
        let body = Bytes::from_static(b"#EXTM3U\n#EXT-X-VERSION:7\n");
        store
            .put("recordings/abc/index.m3u8", body.clone(), "ignored/here")
            .await
            .expect("put");
        let object = store
            .get("recordings/abc/index.m3u8", None)
            .await
            .expect("get");
        assert_eq!(object.body, body);
        assert_eq!(object.total_len, body.len() as u64);
        assert_eq!(object.range, None);
        assert_eq!(object.content_type, "application/vnd.apple.mpegurl");
        let meta = store.head("recordings/abc/index.m3u8").await.expect("head");
        assert_eq!(meta.len, body.len() as u64);

        store
            .put("recordings/abc/index.m3u8", Bytes::from_static(b"new"), "x")
            .await
            .expect("overwrite");
        let object = store
            .get("recordings/abc/index.m3u8", None)
            .await
            .expect("get");
        assert_eq!(&object.body[..], b"new");
        // No temporary file is left beside it.
        assert_eq!(keys(&store, "").await, ["recordings/abc/index.m3u8"]);
    }

    #[tokio::test]
    async fn empty_objects_work() {
        let (_dir, store) = store();
        store.put("e.bin", Bytes::new(), "x").await.expect("put");
        let object = store.get("e.bin", None).await.expect("get");
        assert!(object.body.is_empty());
        assert_eq!(object.total_len, 0);
        let err = store
            .get("e.bin", Some(ByteRange::From { first: 0 }))
            .await
            .err();
        assert!(matches!(
            err,
            Some(StorageError::RangeNotSatisfiable { len: 0 })
        ));
    }

    #[tokio::test]
    async fn ranges_are_served_and_checked() {
        let (_dir, store) = store();
        let body: Vec<u8> = (0..=255u8).collect();
        store
            .put("seg.m4s", Bytes::from(body.clone()), "x")
            .await
            .expect("put");

        let get = |range| {
            let store = store.clone();
            async move { store.get("seg.m4s", Some(range)).await }
        };
        let o = get(ByteRange::Inclusive {
            first: 10,
            last: 19,
        })
        .await
        .expect("a-b");
        assert_eq!(&o.body[..], &body[10..20]);
        assert_eq!((o.range, o.total_len), (Some((10, 19)), 256));
        assert_eq!(o.content_type, "video/iso.segment");

        let o = get(ByteRange::From { first: 250 }).await.expect("a-");
        assert_eq!(&o.body[..], &body[250..]);
        assert_eq!(o.range, Some((250, 255)));

        let o = get(ByteRange::Suffix { len: 4 }).await.expect("-n");
        assert_eq!(&o.body[..], &body[252..]);
        assert_eq!(o.range, Some((252, 255)));

        let o = get(ByteRange::Inclusive {
            first: 200,
            last: 10_000,
        })
        .await
        .expect("clamped");
        assert_eq!(o.range, Some((200, 255)));
        assert_eq!(o.body.len(), 56);

        let err = get(ByteRange::From { first: 256 }).await.err();
        assert!(matches!(
            err,
            Some(StorageError::RangeNotSatisfiable { len: 256 })
        ));
    }

    #[tokio::test]
    async fn missing_objects_are_not_found() {
        let (_dir, store) = store();
        assert!(
            store
                .get("nope.mp4", None)
                .await
                .err()
                .is_some_and(|e| e.is_not_found())
        );
        assert!(
            store
                .head("nope.mp4")
                .await
                .err()
                .is_some_and(|e| e.is_not_found())
        );
        store
            .put("dir/file", Bytes::from_static(b"x"), "x")
            .await
            .expect("put");
        // Nor is anything "under" a file.
        assert!(
            store
                .get("dir/file/x", None)
                .await
                .err()
                .is_some_and(|e| e.is_not_found())
        );
        assert!(
            store
                .head("dir/file/x")
                .await
                .err()
                .is_some_and(|e| e.is_not_found())
        );
        store
            .delete("dir/file/x")
            .await
            .expect("deleting under a file is a no-op");
        // A directory is not an object.
        assert!(
            store
                .get("dir", None)
                .await
                .err()
                .is_some_and(|e| e.is_not_found())
        );
        assert!(
            store
                .head("dir")
                .await
                .err()
                .is_some_and(|e| e.is_not_found())
        );
        store
            .delete("dir")
            .await
            .expect("deleting a directory name is a no-op");
        assert_eq!(keys(&store, "").await, ["dir/file"]);
    }

    #[tokio::test]
    async fn list_is_recursive_sorted_and_prefix_filtered() {
        let (_dir, store) = store();
        for key in [
            "recordings/b/2.m4s",
            "recordings/a/index.m3u8",
            "recordings/a/1.m4s",
            "recordings/ab/x.m4s",
            "replays/a.json",
            "top.json",
        ] {
            store
                .put(key, Bytes::from(key.to_owned()), "x")
                .await
                .expect("put");
        }
        assert_eq!(
            keys(&store, "recordings/a/").await,
            ["recordings/a/1.m4s", "recordings/a/index.m3u8"]
        );
        assert_eq!(
            keys(&store, "recordings/a").await,
            [
                "recordings/a/1.m4s",
                "recordings/a/index.m3u8",
                "recordings/ab/x.m4s"
            ]
        );
        assert_eq!(keys(&store, "rec").await.len(), 4);
        assert_eq!(keys(&store, "").await.len(), 6);
        assert_eq!(keys(&store, "t").await, ["top.json"]);
        assert!(keys(&store, "missing/").await.is_empty());
        assert!(keys(&store, "top.json/").await.is_empty());
        let list = store.list("replays/").await.expect("list");
        assert_eq!(list[0].len, "replays/a.json".len() as u64);
    }

    #[tokio::test]
    async fn delete_and_delete_prefix() {
        let (dir, store) = store();
        for key in ["r/a/1", "r/a/2", "r/a/sub/3", "r/ab/4", "r/b/5"] {
            store
                .put(key, Bytes::from_static(b"x"), "x")
                .await
                .expect("put");
        }
        store.delete("r/b/5").await.expect("delete");
        store.delete("r/b/5").await.expect("deleting again is fine");
        store
            .delete("never/was")
            .await
            .expect("deleting a missing key is fine");
        assert!(
            !dir.path().join("root/r/b").exists(),
            "empty dirs are pruned"
        );

        assert_eq!(store.delete_prefix("r/a/").await.expect("delete_prefix"), 3);
        assert_eq!(keys(&store, "").await, ["r/ab/4"]);
        assert!(!dir.path().join("root/r/a").exists());
        assert_eq!(store.delete_prefix("r/a/").await.expect("again"), 0);
        assert!(
            store.delete_prefix("").await.is_err(),
            "never empties the store"
        );
        assert_eq!(store.delete_prefix("r/").await.expect("rest"), 1);
        assert!(dir.path().join("root").is_dir(), "the root stays");
    }

    #[tokio::test]
    async fn never_escapes_the_root() {
        let (dir, store) = store();
        std::fs::write(dir.path().join("secret"), b"s").expect("write");
        for key in [
            "../secret",
            "/etc/passwd",
            "a/../../secret",
            "..\\secret",
            "a\0b",
        ] {
            let put = store.put(key, Bytes::from_static(b"x"), "x").await;
            assert!(
                matches!(put, Err(StorageError::InvalidKey { .. })),
                "{key:?}"
            );
            let get = store.get(key, None).await;
            assert!(
                matches!(get, Err(StorageError::InvalidKey { .. })),
                "{key:?}"
            );
            assert!(store.delete(key).await.is_err(), "{key:?}");
        }
        assert!(store.list("../").await.is_err());
        assert!(store.delete_prefix("../").await.is_err());
        assert_eq!(
            std::fs::read(dir.path().join("secret")).expect("read"),
            b"s"
        );
        let tmp = format!("a/{TMP_PREFIX}1.2");
        assert!(store.put(&tmp, Bytes::new(), "x").await.is_err());
    }

    #[tokio::test]
    async fn describe_names_the_root() {
        let (dir, store) = store();
        let root = dir
            .path()
            .join("root")
            .canonicalize()
            .expect("canonicalize");
        assert_eq!(store.describe(), format!("local:{}", root.display()));
    }
}
