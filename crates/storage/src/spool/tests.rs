use std::fs;
use std::time::Duration;

use super::*;

/// A local store that fails every put until [`Outage::end`]: its root directory is swapped for
/// a plain file, so creating the object's parent directory fails.
struct Outage {
    root: PathBuf,
}

impl Outage {
    fn begin(root: &Path) -> Outage {
        fs::remove_dir_all(root).expect("remove root");
        fs::write(root, b"not a directory").expect("block root");
        Outage {
            root: root.to_path_buf(),
        }
    }

    fn end(self) {
        fs::remove_file(&self.root).expect("unblock root");
        fs::create_dir(&self.root).expect("recreate root");
    }
}

fn fast() -> SpoolOptions {
    SpoolOptions {
        retry_min: Duration::from_millis(5),
        retry_max: Duration::from_millis(40),
        concurrency: 4,
    }
}

fn body(i: usize) -> Bytes {
    Bytes::from(format!("segment {i} ").repeat(i + 1))
}

fn key(i: usize) -> String {
    format!("recordings/r1/seg_{i:05}.m4s")
}

/// Spool files left in `dir` (entries and temporary files).
fn spool_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("read spool dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

async fn wait_for_failures(spool: &Spool, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while spool.pending().failures_total < n {
        assert!(
            Instant::now() < deadline,
            "no upload failure seen: {:?}",
            spool.pending()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn assert_stored(store: &ObjectStore, n: usize) {
    for i in 0..n {
        let object = store.get(&key(i), None).await.expect("uploaded object");
        assert_eq!(object.body, body(i), "{}", key(i));
    }
}

#[tokio::test]
async fn uploads_everything_and_empties_the_directory() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = ObjectStore::local(tmp.path().join("store")).expect("store");
    let spool = Spool::open_with(tmp.path().join("spool"), store.clone(), fast())
        .await
        .expect("open");
    for i in 0..20 {
        spool
            .enqueue(&key(i), body(i), "video/iso.segment")
            .await
            .expect("enqueue");
    }
    assert!(
        spool.flush(Duration::from_secs(10)).await,
        "{:?}",
        spool.pending()
    );
    assert_stored(&store, 20).await;
    let stats = spool.pending();
    assert_eq!(
        (
            stats.entries,
            stats.bytes,
            stats.uploaded_total,
            stats.failures_total
        ),
        (0, 0, 20, 0)
    );
    assert!(
        spool_files(spool.dir()).is_empty(),
        "{:?}",
        spool_files(spool.dir())
    );
    assert_eq!(spool.read_pending(&key(0)).await, None);
    spool.close().await;
}

#[tokio::test]
async fn an_outage_loses_nothing_and_pending_bodies_stay_readable() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("store");
    let store = ObjectStore::local(root.clone()).expect("store");
    let outage = Outage::begin(&root);
    let spool = Spool::open_with(tmp.path().join("spool"), store.clone(), fast())
        .await
        .expect("open");
    for i in 0..8 {
        spool
            .enqueue(&key(i), body(i), "video/iso.segment")
            .await
            .expect("enqueue");
    }
    wait_for_failures(&spool, 3).await;
    let stats = spool.pending();
    assert_eq!(stats.entries, 8);
    assert_eq!(
        stats.bytes,
        (0..8).map(|i| body(i).len() as u64).sum::<u64>()
    );
    assert_eq!(stats.uploaded_total, 0);
    for i in 0..8 {
        assert_eq!(spool.read_pending(&key(i)).await, Some(body(i)));
    }
    assert_eq!(spool.read_pending("recordings/r1/other.m4s").await, None);
    assert!(
        !spool.flush(Duration::from_millis(50)).await,
        "cannot empty during the outage"
    );

    outage.end();
    assert!(
        spool.flush(Duration::from_secs(10)).await,
        "{:?}",
        spool.pending()
    );
    assert_stored(&store, 8).await;
    assert_eq!(spool.pending().uploaded_total, 8);
    assert!(spool_files(spool.dir()).is_empty());
}

#[tokio::test]
async fn a_restart_resumes_the_uploads() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let spool_dir = tmp.path().join("spool");
    let down_root = tmp.path().join("down");
    let down = ObjectStore::local(down_root.clone()).expect("store");
    let _outage = Outage::begin(&down_root);
    {
        let spool = Spool::open_with(spool_dir.clone(), down, fast())
            .await
            .expect("open");
        for i in 0..6 {
            spool
                .enqueue(&key(i), body(i), "video/iso.segment")
                .await
                .expect("enqueue");
        }
        // The same key twice: the later body must win.
        spool
            .enqueue(&key(0), Bytes::from_static(b"newer"), "video/iso.segment")
            .await
            .expect("enqueue");
        wait_for_failures(&spool, 1).await;
        assert_eq!(
            spool.read_pending(&key(0)).await.as_deref(),
            Some(&b"newer"[..])
        );
        // Dropped, like a crashed process: no close, entries stay on disk.
    }
    // Leftovers of a crash in the middle of an enqueue.
    fs::write(spool_dir.join(".greenroom-tmp.99.1"), b"half").expect("write");
    fs::write(spool_dir.join("00000000000000000100.data"), b"no meta").expect("write");

    let up = ObjectStore::local(tmp.path().join("up")).expect("store");
    let spool = Spool::open_with(spool_dir.clone(), up.clone(), fast())
        .await
        .expect("reopen");
    // Sequence numbers continue past everything seen on disk, orphans included.
    assert_eq!(lock(&spool.shared.state).next_seq, 101);
    assert!(
        spool.flush(Duration::from_secs(10)).await,
        "{:?}",
        spool.pending()
    );
    assert_eq!(
        &up.get(&key(0), None).await.expect("get").body[..],
        b"newer"
    );
    for i in 1..6 {
        assert_eq!(up.get(&key(i), None).await.expect("get").body, body(i));
    }
    assert_eq!(spool.pending().uploaded_total, 7);
    assert!(
        spool_files(&spool_dir).is_empty(),
        "{:?}",
        spool_files(&spool_dir)
    );
    spool.close().await;
}

#[tokio::test]
async fn the_same_key_is_uploaded_in_enqueue_order() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = ObjectStore::local(tmp.path().join("store")).expect("store");
    let spool = Spool::open_with(tmp.path().join("spool"), store.clone(), fast())
        .await
        .expect("open");
    for round in 0..30 {
        for k in ["live/index.m3u8", "live/other.m3u8"] {
            let body = Bytes::from(format!("{k} v{round}"));
            spool
                .enqueue(k, body, "application/vnd.apple.mpegurl")
                .await
                .expect("enqueue");
        }
    }
    assert!(spool.flush(Duration::from_secs(10)).await);
    for k in ["live/index.m3u8", "live/other.m3u8"] {
        let object = store.get(k, None).await.expect("get");
        assert_eq!(object.body, Bytes::from(format!("{k} v29")));
    }
    assert_eq!(spool.pending().uploaded_total, 60);
}

#[tokio::test]
async fn close_leaves_pending_entries_on_disk() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("store");
    let store = ObjectStore::local(root.clone()).expect("store");
    let _outage = Outage::begin(&root);
    let spool = Spool::open_with(tmp.path().join("spool"), store, fast())
        .await
        .expect("open");
    spool
        .enqueue("a/1.json", Bytes::from_static(b"{}"), "application/json")
        .await
        .expect("enqueue");
    spool.close().await;
    assert_eq!(
        spool_files(&tmp.path().join("spool")),
        ["00000000000000000000.data", "00000000000000000000.json"]
    );
}

#[tokio::test]
async fn bad_keys_and_options_are_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = ObjectStore::local(tmp.path().join("store")).expect("store");
    let spool = Spool::open(tmp.path().join("spool"), store.clone())
        .await
        .expect("open");
    for bad in ["", "/abs", "../up", "a//b"] {
        let err = spool.enqueue(bad, Bytes::new(), "x").await.err();
        assert!(
            matches!(err, Some(StorageError::InvalidKey { .. })),
            "{bad:?}: {err:?}"
        );
    }
    assert_eq!(spool.pending(), SpoolStats::default());

    for options in [
        SpoolOptions {
            retry_min: Duration::ZERO,
            ..fast()
        },
        SpoolOptions {
            retry_min: Duration::from_secs(2),
            retry_max: Duration::from_secs(1),
            ..fast()
        },
        SpoolOptions {
            concurrency: 0,
            ..fast()
        },
    ] {
        let opened = Spool::open_with(tmp.path().join("other"), store.clone(), options).await;
        assert!(matches!(opened, Err(StorageError::Config(_))));
    }
}
