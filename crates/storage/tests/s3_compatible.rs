//! `ObjectStore` and `Spool` against a real S3-compatible server: s3s-fs, which checks SigV4
//! signatures and keeps objects as files. Each test starts its own server on a free loopback
//! port and kills it when its guard drops (even on panic).
//!
//! s3s-fs comes from `scripts/install-test-tools.sh`; the tests fail (never skip) without it.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use greenroom_storage::{
    ByteRange, ObjectMeta, ObjectStore, S3Config, Spool, SpoolOptions, StorageError,
};

const ACCESS_KEY: &str = "greenroom-test-access";
const SECRET_KEY: &str = "greenroom-test-secret-0123456789";
const BUCKET: &str = "recordings";

fn s3s_fs_binary() -> PathBuf {
    let path = match std::env::var_os("GREENROOM_S3S_FS") {
        Some(path) => PathBuf::from(path),
        None => {
            let home = std::env::var_os("HOME").expect("HOME is not set");
            PathBuf::from(home).join(".cache/greenroom-tools/bin/s3s-fs")
        }
    };
    assert!(
        path.is_file(),
        "s3s-fs not found at {}: run scripts/install-test-tools.sh \
         (or point GREENROOM_S3S_FS at an s3s-fs binary)",
        path.display()
    );
    path
}

/// A running s3s-fs; killed on drop.
struct S3sFs {
    child: Option<Child>,
    addr: SocketAddr,
    root: PathBuf,
}

impl S3sFs {
    /// Starts a server over `root` (with the bucket directory created) on a free port.
    fn start(root: &Path) -> S3sFs {
        std::fs::create_dir_all(root.join(BUCKET)).expect("create bucket dir");
        let mut last_error = String::new();
        // A free port can be taken between the probe and the server's bind: try a few.
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("probe a free port")
                .port();
            let mut server = S3sFs {
                child: None,
                addr: SocketAddr::from(([127, 0, 0, 1], port)),
                root: root.to_path_buf(),
            };
            match server.spawn() {
                Ok(()) => return server,
                Err(e) => last_error = e,
            }
        }
        panic!("s3s-fs did not start: {last_error}");
    }

    /// Spawns s3s-fs on `self.addr` and waits until it accepts connections.
    fn spawn(&mut self) -> Result<(), String> {
        let mut child = Command::new(s3s_fs_binary())
            .arg("--host")
            .arg("127.0.0.1")
            .arg("--port")
            .arg(self.addr.port().to_string())
            .arg("--access-key")
            .arg(ACCESS_KEY)
            .arg("--secret-key")
            .arg(SECRET_KEY)
            .arg(&self.root)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("spawning s3s-fs: {e}"))?;
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("s3s-fs exited at start: {status}"));
            }
            if TcpStream::connect_timeout(&self.addr, Duration::from_millis(100)).is_ok() {
                self.child = Some(child);
                return Ok(());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("s3s-fs not listening on {} after 15 s", self.addr));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the server: the outage.
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        assert!(
            TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_err(),
            "{} still accepts connections after the kill",
            self.addr
        );
    }

    /// Starts it again on the same port and root: the outage ends.
    fn restart(&mut self) {
        self.stop();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.spawn() {
                Ok(()) => return,
                Err(e) if Instant::now() > deadline => panic!("s3s-fs did not restart: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    fn config(&self, prefix: &str) -> S3Config {
        S3Config {
            endpoint: Some(format!("http://{}", self.addr)),
            access_key_id: Some(ACCESS_KEY.to_owned()),
            secret_access_key: Some(SECRET_KEY.to_owned()),
            path_style: true,
            prefix: prefix.to_owned(),
            ..S3Config::new(BUCKET)
        }
    }

    fn store(&self, prefix: &str) -> ObjectStore {
        ObjectStore::s3(self.config(prefix)).expect("s3 store")
    }

    /// Where s3s-fs keeps an object of the bucket.
    fn file(&self, full_key: &str) -> PathBuf {
        self.root.join(BUCKET).join(full_key)
    }
}

impl Drop for S3sFs {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Deterministic bytes that differ by `seed`.
fn bytes(seed: u64, len: usize) -> Bytes {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect::<Vec<u8>>()
        .into()
}

fn keys(list: &[ObjectMeta]) -> Vec<&str> {
    list.iter().map(|m| m.key.as_str()).collect()
}

fn fast_retries() -> SpoolOptions {
    SpoolOptions {
        retry_min: Duration::from_millis(50),
        retry_max: Duration::from_millis(500),
        concurrency: 4,
    }
}

async fn wait_for_a_failure(spool: &Spool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while spool.pending().failures_total == 0 {
        assert!(
            Instant::now() < deadline,
            "no failed upload while S3 is down"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn objects_round_trip_through_a_prefix_with_path_style() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let server = S3sFs::start(&tmp.path().join("s3"));
    let store = server.store("gr/live/");
    assert_eq!(
        store.describe(),
        format!("s3://{BUCKET}/gr/live/ @ http://{}", server.addr)
    );

    let playlist = Bytes::from_static(b"#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:2\n");
    let segment = bytes(1, 300_000);
    store
        .put(
            "rec/a/index.m3u8",
            playlist.clone(),
            "application/vnd.apple.mpegurl",
        )
        .await
        .expect("put playlist");
    store
        .put("rec/a/seg_00001.m4s", segment.clone(), "video/iso.segment")
        .await
        .expect("put segment");
    store
        .put(
            "rec/a b/ü+&=.json",
            Bytes::from_static(b"{}"),
            "application/json",
        )
        .await
        .expect("put an awkward key");
    store
        .put("rec/empty.bin", Bytes::new(), "application/octet-stream")
        .await
        .expect("put empty");

    // The prefix is a folder in the bucket.
    assert_eq!(
        std::fs::read(server.file("gr/live/rec/a/seg_00001.m4s")).expect("file on the server"),
        segment
    );

    let object = store.get("rec/a/index.m3u8", None).await.expect("get");
    assert_eq!(object.body, playlist);
    assert_eq!(object.total_len, playlist.len() as u64);
    assert_eq!(object.range, None);
    assert_eq!(object.content_type, "application/vnd.apple.mpegurl");
    let object = store
        .get("rec/a b/ü+&=.json", None)
        .await
        .expect("get awkward");
    assert_eq!(&object.body[..], b"{}");
    assert_eq!(object.content_type, "application/json");
    let object = store.get("rec/empty.bin", None).await.expect("get empty");
    assert!(object.body.is_empty());

    // Ranges: a-b, a-, -n, clamped, unsatisfiable.
    let len = segment.len() as u64;
    let ranged = |range: &str| {
        let store = store.clone();
        let range = ByteRange::parse_header(range).expect("range");
        async move { store.get("rec/a/seg_00001.m4s", Some(range)).await }
    };
    let o = ranged("bytes=100-199").await.expect("a-b");
    assert_eq!((o.range, o.total_len), (Some((100, 199)), len));
    assert_eq!(o.body, segment.slice(100..200));
    assert_eq!(o.content_type, "video/iso.segment");
    let o = ranged("bytes=299000-").await.expect("a-");
    assert_eq!(o.range, Some((299_000, len - 1)));
    assert_eq!(o.body, segment.slice(299_000..));
    let o = ranged("bytes=-1000").await.expect("-n");
    assert_eq!(o.range, Some((len - 1000, len - 1)));
    assert_eq!(o.body, segment.slice(segment.len() - 1000..));
    let o = ranged("bytes=299990-400000").await.expect("clamped");
    assert_eq!(o.range, Some((299_990, len - 1)));
    assert_eq!(o.body.len(), 10);
    let err = ranged("bytes=300000-").await.err();
    assert!(
        matches!(
            err,
            Some(StorageError::RangeNotSatisfiable { len: 300_000 })
        ),
        "{err:?}"
    );

    let meta = store.head("rec/a/seg_00001.m4s").await.expect("head");
    assert_eq!(meta.len, len);
    let missing = store.head("rec/a/nope.m4s").await.err();
    assert!(
        missing.as_ref().is_some_and(StorageError::is_not_found),
        "{missing:?}"
    );
    let missing = store.get("rec/a/nope.m4s", None).await.err();
    assert!(
        missing.as_ref().is_some_and(StorageError::is_not_found),
        "{missing:?}"
    );

    // Listing strips the bucket prefix and is sorted.
    let all = store.list("").await.expect("list");
    assert_eq!(
        keys(&all),
        [
            "rec/a b/ü+&=.json",
            "rec/a/index.m3u8",
            "rec/a/seg_00001.m4s",
            "rec/empty.bin"
        ]
    );
    assert_eq!(all[2].len, len);
    assert_eq!(
        keys(&store.list("rec/a/").await.expect("list")),
        ["rec/a/index.m3u8", "rec/a/seg_00001.m4s"]
    );
    assert!(store.list("other/").await.expect("list").is_empty());
    // Another prefix in the same bucket sees none of it.
    assert!(
        server
            .store("gr/other")
            .list("")
            .await
            .expect("list")
            .is_empty()
    );

    store.delete("rec/a/index.m3u8").await.expect("delete");
    store
        .delete("rec/a/index.m3u8")
        .await
        .expect("delete again");
    let gone = store.get("rec/a/index.m3u8", None).await.err();
    assert!(
        gone.as_ref().is_some_and(StorageError::is_not_found),
        "{gone:?}"
    );
    assert_eq!(store.delete_prefix("rec/").await.expect("delete_prefix"), 3);
    assert!(store.list("").await.expect("list").is_empty());
}

#[tokio::test]
async fn listing_and_deleting_page_through_many_keys() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let server = S3sFs::start(&tmp.path().join("s3"));
    let store = ObjectStore::s3(S3Config {
        list_page_size: 3,
        ..server.config("")
    })
    .expect("store");
    let mut expected = Vec::new();
    for i in 0..11 {
        let key = format!("recordings/abc/seg_{i:05}.m4s");
        store
            .put(&key, bytes(i, 10 + i as usize), "video/iso.segment")
            .await
            .expect("put");
        expected.push(key);
    }
    store
        .put("recordings/abcd/x.m4s", bytes(99, 5), "video/iso.segment")
        .await
        .expect("put");
    store
        .put("top.json", Bytes::from_static(b"[]"), "application/json")
        .await
        .expect("put");

    let listed = store.list("recordings/abc/").await.expect("list");
    assert_eq!(keys(&listed), expected);
    assert!(listed.iter().zip(10..).all(|(m, len)| m.len == len));
    assert_eq!(store.list("recordings/abc").await.expect("list").len(), 12);
    assert_eq!(store.list("").await.expect("list").len(), 13);

    // 11 keys in batches of 3; the sibling "recordings/abcd/" is not touched.
    assert_eq!(
        store
            .delete_prefix("recordings/abc/")
            .await
            .expect("delete"),
        11
    );
    assert_eq!(
        keys(&store.list("").await.expect("list")),
        ["recordings/abcd/x.m4s", "top.json"]
    );
    assert_eq!(
        store.delete_prefix("recordings/abc/").await.expect("again"),
        0
    );
}

#[tokio::test]
async fn signatures_and_buckets_are_checked() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let server = S3sFs::start(&tmp.path().join("s3"));

    let wrong_secret = ObjectStore::s3(S3Config {
        secret_access_key: Some("not-the-secret".to_owned()),
        ..server.config("")
    })
    .expect("store");
    let err = wrong_secret
        .put("a.json", Bytes::from_static(b"{}"), "application/json")
        .await
        .err();
    match err {
        Some(StorageError::S3 { op, key, message }) => {
            assert_eq!((op, key.as_str()), ("PutObject", "a.json"));
            assert!(message.contains("Signature"), "{message}");
        }
        other => panic!("expected an S3 error, got {other:?}"),
    }
    assert!(!server.file("a.json").exists());

    // A missing bucket is an S3 error, not a missing object.
    let no_bucket = ObjectStore::s3(S3Config {
        bucket: "no-such-bucket".to_owned(),
        ..server.config("")
    })
    .expect("store");
    // (s3s-fs answers NoSuchKey to a GET there, so ask with calls that check the bucket.)
    let err = no_bucket.list("").await.err();
    assert!(
        matches!(&err, Some(StorageError::S3 { op: "ListObjectsV2", message, .. })
            if message.contains("NoSuchBucket")),
        "{err:?}"
    );
    let err = no_bucket.delete("a.json").await.err();
    assert!(
        matches!(&err, Some(StorageError::S3 { op: "DeleteObject", message, .. })
            if message.contains("NoSuchBucket")),
        "{err:?}"
    );
}

#[tokio::test]
async fn the_spool_loses_nothing_while_s3_is_down() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut server = S3sFs::start(&tmp.path().join("s3"));
    let store = server.store("live");
    server.stop();

    let spool = Spool::open_with(tmp.path().join("spool"), store.clone(), fast_retries())
        .await
        .expect("open spool");
    let objects: Vec<(String, Bytes)> = (0..12)
        .map(|i| {
            let key = format!("recordings/r1/seg_{i:05}.m4s");
            (key, bytes(i, 1000 * i as usize))
        })
        .collect();
    for (key, body) in &objects {
        spool
            .enqueue(key, body.clone(), "video/iso.segment")
            .await
            .expect("enqueue while S3 is down");
    }
    wait_for_a_failure(&spool).await;
    let stats = spool.pending();
    assert_eq!(stats.entries, 12);
    assert_eq!(stats.uploaded_total, 0);
    assert_eq!(
        stats.bytes,
        objects.iter().map(|(_, b)| b.len() as u64).sum::<u64>()
    );
    for (key, body) in &objects {
        assert_eq!(spool.read_pending(key).await.as_ref(), Some(body), "{key}");
    }

    server.restart();
    assert!(
        spool.flush(Duration::from_secs(60)).await,
        "not flushed after S3 came back: {:?}",
        spool.pending()
    );
    for (key, body) in &objects {
        let object = store.get(key, None).await.expect("uploaded");
        assert_eq!(&object.body, body, "{key}");
        assert_eq!(object.content_type, "video/iso.segment");
        assert_eq!(spool.read_pending(key).await, None);
    }
    let stats = spool.pending();
    assert_eq!(
        (stats.entries, stats.bytes, stats.uploaded_total),
        (0, 0, 12)
    );
    assert!(stats.failures_total >= 1);
    spool.close().await;
}

#[tokio::test]
async fn a_spool_dropped_during_the_outage_uploads_after_a_restart() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let spool_dir = tmp.path().join("spool");
    let mut server = S3sFs::start(&tmp.path().join("s3"));
    let store = server.store("");
    server.stop();

    let objects: Vec<(String, Bytes)> = (0..6)
        .map(|i| {
            (
                format!("replays/x/part_{i}.mp4"),
                bytes(100 + i, 5000 + i as usize),
            )
        })
        .collect();
    {
        let spool = Spool::open_with(spool_dir.clone(), store.clone(), fast_retries())
            .await
            .expect("open spool");
        for (key, body) in &objects {
            spool
                .enqueue(key, body.clone(), "video/mp4")
                .await
                .expect("enqueue");
        }
        wait_for_a_failure(&spool).await;
        // Dropped without close or flush, as by a crash.
    }

    server.restart();
    let spool = Spool::open_with(spool_dir.clone(), store.clone(), fast_retries())
        .await
        .expect("reopen spool");
    assert!(
        spool.flush(Duration::from_secs(60)).await,
        "not flushed after the restart: {:?}",
        spool.pending()
    );
    for (key, body) in &objects {
        assert_eq!(
            &store.get(key, None).await.expect("uploaded").body,
            body,
            "{key}"
        );
    }
    assert_eq!(
        keys(&store.list("replays/").await.expect("list")),
        objects.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>()
    );
    assert_eq!(std::fs::read_dir(&spool_dir).expect("spool dir").count(), 0);
}
