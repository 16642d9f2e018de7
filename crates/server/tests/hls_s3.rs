//! Recording into a real S3-compatible server (s3s-fs, which checks SigV4 signatures), through
//! the real binary: the S3 server is stopped in the middle of a live stream and started again;
//! no segment is lost. Then the greenroom server itself is stopped while S3 is down, and its
//! restart finishes the uploads.
//!
//! s3s-fs comes from `scripts/install-test-tools.sh` (`make test` runs it); the test fails,
//! rather than skipping, when it is missing.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

mod binary;

use binary::{Kill, ffmpeg_publish};

const ADMIN: &str = "test-admin-token-s3-0123456789abc";
const BUCKET: &str = "replays";
const ACCESS: &str = "greenroomtest";
const SECRET: &str = "greenroomtestsecret123";

fn s3s_fs_binary() -> PathBuf {
    let path = std::env::var_os("GREENROOM_S3S_FS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/greenroom-tools/bin/s3s-fs")
        });
    assert!(
        path.exists(),
        "s3s-fs not found at {}: run scripts/install-test-tools.sh",
        path.display()
    );
    path
}

fn start_s3(root: &Path, port: u16) -> Kill {
    let child = Command::new(s3s_fs_binary())
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--access-key", ACCESS, "--secret-key", SECRET])
        .arg(root)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start s3s-fs");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "s3s-fs did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Kill(child)
}

fn settings(port: u16) -> Vec<(&'static str, String)> {
    vec![
        ("GREENROOM_S3_BUCKET", BUCKET.to_owned()),
        ("GREENROOM_S3_ENDPOINT", format!("http://127.0.0.1:{port}")),
        ("GREENROOM_S3_ACCESS_KEY_ID", ACCESS.to_owned()),
        ("GREENROOM_S3_SECRET_ACCESS_KEY", SECRET.to_owned()),
        ("GREENROOM_S3_PATH_STYLE", "true".to_owned()),
        ("GREENROOM_HLS_PRESET", "ultrafast".to_owned()),
        ("GREENROOM_RETENTION_INTERVAL_SECS", "1".to_owned()),
    ]
}

/// The segment names a VOD playlist lists.
fn listed_segments(playlist: &str) -> Vec<String> {
    playlist
        .lines()
        .filter(|l| l.starts_with("seg") && l.ends_with(".m4s"))
        .map(str::to_owned)
        .collect()
}

async fn recordings(http: &reqwest::Client, base: &str, id: &str) -> Value {
    http.get(format!("{base}/api/v1/streams/{id}/recordings"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("recordings")
        .json()
        .await
        .expect("json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_s3_outage_mid_stream_loses_no_segment_and_a_restart_resumes_uploads() {
    let s3_root = tempfile::tempdir().expect("s3 root");
    std::fs::create_dir_all(s3_root.path().join(BUCKET)).expect("bucket");
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let mut s3 = Some(start_s3(s3_root.path(), port));
    let env = settings(port);
    let env_refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = binary::start_server_with(ADMIN, "greenroom=info,warn", &env_refs);
    let base = server.base.clone();
    let http = reqwest::Client::new();
    let stream: Value = http
        .post(format!("{base}/api/v1/streams"))
        .bearer_auth(ADMIN)
        .json(&serde_json::json!({"title": "s3"}))
        .send()
        .await
        .expect("create")
        .json()
        .await
        .expect("json");
    let id = stream["id"].as_str().expect("id").to_owned();
    let rtmp_url = stream["rtmp_url"].as_str().expect("rtmp").to_owned();
    let mut ffmpeg = ffmpeg_publish(&rtmp_url, "640x360", 16, 60, 0);

    // Segments arrive in the bucket while live.
    let bucket_dir = s3_root.path().join(BUCKET).join("recordings").join(&id);
    let count_objects = |dir: &Path| -> usize {
        fn walk(dir: &Path, n: &mut usize) {
            if let Ok(entries) = std::fs::read_dir(dir) {
                for e in entries.flatten() {
                    let p = e.path();
                    if p.is_dir() {
                        walk(&p, n);
                    } else if p.extension().is_some_and(|x| x == "m4s") {
                        *n += 1;
                    }
                }
            }
        }
        let mut n = 0;
        walk(dir, &mut n);
        n
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while count_objects(&bucket_dir) == 0 {
        assert!(Instant::now() < deadline, "no segment reached S3");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // S3 goes away for six seconds of the live stream.
    drop(s3.take());
    tokio::time::sleep(Duration::from_secs(6)).await;
    s3 = Some(start_s3(s3_root.path(), port));
    let _ = ffmpeg.0.wait();

    let mut recording = Value::Null;
    let deadline = Instant::now() + Duration::from_secs(40);
    while Instant::now() < deadline {
        let list = recordings(&http, &base, &id).await;
        if list[0]["status"] == "ready" {
            recording = list[0].clone();
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(recording["status"], "ready", "{recording}");
    let rec_id = recording["id"].as_str().expect("id").to_owned();
    let rec_dir = bucket_dir.join(&rec_id).join("360p");
    // Every segment the replay lists is in the bucket, once the spool has drained.
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut missing = Vec::new();
    while Instant::now() < deadline {
        let playlist = std::fs::read_to_string(rec_dir.join("index.m3u8")).unwrap_or_default();
        let listed = listed_segments(&playlist);
        missing = listed
            .iter()
            .filter(|s| !rec_dir.join(s).is_file())
            .cloned()
            .collect();
        if playlist.contains("#EXT-X-ENDLIST") && missing.is_empty() && listed.len() >= 6 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(missing.is_empty(), "segments lost: {missing:?}");
    let playlist = std::fs::read_to_string(rec_dir.join("index.m3u8")).expect("playlist");
    assert!(playlist.contains("#EXT-X-ENDLIST"), "{playlist}");
    let listed = listed_segments(&playlist);
    assert!(listed.len() >= 6, "{playlist}");
    // Numbered without gaps.
    let numbers: Vec<u64> = listed
        .iter()
        .map(|s| s[3..s.len() - 4].parse().expect("msn"))
        .collect();
    assert!(numbers.windows(2).all(|w| w[1] == w[0] + 1), "{numbers:?}");
    // The replay plays from S3 through the server.
    let replay = recording["replay_url"].as_str().expect("replay");
    let probe = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=duration",
            "-of",
            "csv=p=0",
        ])
        .arg(replay)
        .output()
        .expect("ffprobe");
    let duration: f64 = String::from_utf8_lossy(&probe.stdout)
        .trim()
        .parse()
        .unwrap_or(0.0);
    assert!(duration > 10.0, "replay of {duration}s");

    // Retention: expired, the recording leaves the bucket and the database.
    binary::expire_recording(&http, &base, ADMIN, &rec_id).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let gone = recordings(&http, &base, &id)
            .await
            .as_array()
            .is_some_and(Vec::is_empty);
        if gone && count_objects(&bucket_dir.join(&rec_id)) == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the expired recording is still in S3"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    // Restart: S3 down, a second stream recorded, the server stopped; started again with S3
    // back, it uploads what waited.
    drop(s3.take());
    let second: Value = http
        .post(format!("{base}/api/v1/streams"))
        .bearer_auth(ADMIN)
        .json(&serde_json::json!({"title": "s3 restart"}))
        .send()
        .await
        .expect("create")
        .json()
        .await
        .expect("json");
    let id2 = second["id"].as_str().expect("id").to_owned();
    let mut ffmpeg2 = ffmpeg_publish(
        second["rtmp_url"].as_str().expect("rtmp"),
        "640x360",
        8,
        60,
        0,
    );
    let _ = ffmpeg2.0.wait();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let dir = server.stop_keep_dir();
    let spool = dir.path().join("spool");
    assert!(
        std::fs::read_dir(&spool).map(|d| d.count()).unwrap_or(0) > 0,
        "nothing waited in the spool"
    );
    let _s3 = start_s3(s3_root.path(), port);
    let server = binary::start_in(dir, ADMIN, "greenroom=info,warn", &env_refs);
    let second_dir = s3_root.path().join(BUCKET).join("recordings").join(&id2);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let list = recordings(&http, &server.base, &id2).await;
        let ready = list[0]["status"] == "ready";
        let rec2 = list[0]["id"].as_str().unwrap_or("").to_owned();
        let playlist = std::fs::read_to_string(second_dir.join(&rec2).join("360p/index.m3u8"))
            .unwrap_or_default();
        let listed = listed_segments(&playlist);
        let all_there = !listed.is_empty()
            && listed
                .iter()
                .all(|s| second_dir.join(&rec2).join("360p").join(s).is_file());
        if ready && playlist.contains("#EXT-X-ENDLIST") && all_there {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "uploads did not resume: {list} / {playlist}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}
