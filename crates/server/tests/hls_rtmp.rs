//! HLS through the real binary from a real RTMP source: Debian's ffmpeg publishes 1080p H.264
//! (with B-frames) + AAC; the server makes the 1080p/720p/480p/360p ladder (the source passed
//! through on top), serves it as LL-HLS, records it into local storage, turns it into a replay
//! when the stream ends, and the retention job deletes it once it expires. `ffprobe` checks
//! every rendition and the replay.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

mod binary;

use binary::ffmpeg_publish;

const ADMIN: &str = "test-admin-token-hls-0123456789ab";

/// `ffprobe` of a URL: (codec, width, height) of each stream.
fn probe(url: &str) -> Vec<(String, u64, u64)> {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name,width,height",
        ])
        .args(["-of", "json", url])
        .output()
        .expect("ffprobe on PATH (Debian package ffmpeg)");
    assert!(
        out.status.success(),
        "ffprobe {url} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: Value = serde_json::from_slice(&out.stdout).expect("ffprobe JSON");
    json["streams"]
        .as_array()
        .expect("streams")
        .iter()
        .map(|s| {
            (
                s["codec_name"].as_str().unwrap_or("").to_owned(),
                s["width"].as_u64().unwrap_or(0),
                s["height"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

fn attribute<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let start = line.find(&format!("{name}="))? + name.len() + 1;
    let rest = &line[start..];
    if let Some(quoted) = rest.strip_prefix('"') {
        return quoted.split('"').next();
    }
    rest.split(',').next()
}

async fn get_text(http: &reqwest::Client, url: &str) -> (u16, String) {
    let response = http.get(url).send().await.expect("GET");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

/// Checks a live LL-HLS media playlist's structure; returns (last complete msn, parts).
fn validate_live_playlist(text: &str) -> (u64, Vec<String>) {
    assert!(text.starts_with("#EXTM3U"), "{text}");
    let target: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-TARGETDURATION:"))
        .expect("target duration")
        .parse()
        .expect("number");
    let part_target: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-PART-INF:PART-TARGET="))
        .expect("part target")
        .parse()
        .expect("number");
    let control = text
        .lines()
        .find(|l| l.starts_with("#EXT-X-SERVER-CONTROL:"))
        .expect("server control");
    assert!(control.contains("CAN-BLOCK-RELOAD=YES"), "{control}");
    let hold_back: f64 = attribute(control, "PART-HOLD-BACK")
        .expect("PART-HOLD-BACK")
        .parse()
        .expect("number");
    assert!(hold_back >= 2.0 * part_target, "{control}");
    assert!(text.contains("#EXT-X-MAP:URI=\"init.mp4\""), "{text}");
    assert!(text.contains("#EXT-X-PROGRAM-DATE-TIME:"), "{text}");
    assert!(
        text.contains("#EXT-X-PRELOAD-HINT:TYPE=PART,URI="),
        "{text}"
    );
    let mut parts = Vec::new();
    let mut last = None;
    for line in text.lines() {
        if let Some(inf) = line.strip_prefix("#EXTINF:") {
            let d: f64 = inf.trim_end_matches(',').parse().expect("EXTINF");
            assert!(d.round() <= target, "segment of {d}s over target {target}");
        }
        if let Some(part) = line.strip_prefix("#EXT-X-PART:") {
            let d: f64 = attribute(part, "DURATION")
                .expect("DURATION")
                .parse()
                .expect("number");
            assert!(
                d <= part_target + 1e-6,
                "part of {d}s over {part_target}: {line}"
            );
            parts.push(attribute(part, "URI").expect("URI").to_owned());
        }
        if let Some(n) = line
            .strip_prefix("seg")
            .and_then(|r| r.strip_suffix(".m4s"))
        {
            last = Some(n.parse::<u64>().expect("msn"));
        }
    }
    (last.expect("a complete segment"), parts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtmp_1080p_gets_a_ladder_ll_hls_a_replay_and_retention() {
    let server = binary::start_server_with(
        ADMIN,
        "greenroom=info,greenroom_hls=info,warn",
        &[
            ("GREENROOM_HLS_PRESET", "ultrafast"),
            ("GREENROOM_RETENTION_INTERVAL_SECS", "1"),
        ],
    );
    let base = server.base.clone();
    let http = reqwest::Client::new();
    let stream: Value = http
        .post(format!("{base}/api/v1/streams"))
        .bearer_auth(ADMIN)
        .json(&serde_json::json!({"title": "hls"}))
        .send()
        .await
        .expect("create")
        .json()
        .await
        .expect("json");
    let id = stream["id"].as_str().expect("id").to_owned();
    let hls_url = stream["hls_url"].as_str().expect("hls_url").to_owned();
    let rtmp_url = stream["rtmp_url"].as_str().expect("rtmp_url").to_owned();
    let mut ffmpeg = ffmpeg_publish(&rtmp_url, "1920x1080", 16, 60, 2);

    // The master playlist waits for the first segments.
    let mut master = String::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let (status, text) = get_text(&http, &hls_url).await;
        if status == 200 {
            master = text;
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        master.starts_with("#EXTM3U"),
        "no master playlist: {master}"
    );
    let mut variants = Vec::new();
    let mut lines = master.lines();
    while let Some(line) = lines.next() {
        if let Some(inf) = line.strip_prefix("#EXT-X-STREAM-INF:") {
            let uri = lines.next().expect("variant URI").to_owned();
            let resolution = attribute(inf, "RESOLUTION").expect("RESOLUTION").to_owned();
            let codecs = attribute(inf, "CODECS").expect("CODECS").to_owned();
            let bandwidth: u64 = attribute(inf, "BANDWIDTH")
                .expect("BANDWIDTH")
                .parse()
                .expect("n");
            let average: u64 = attribute(inf, "AVERAGE-BANDWIDTH")
                .expect("AVERAGE-BANDWIDTH")
                .parse()
                .expect("n");
            assert!(attribute(inf, "FRAME-RATE").is_some(), "{inf}");
            assert!(bandwidth >= average && average > 0, "{inf}");
            variants.push((uri, resolution, codecs));
        }
    }
    variants.sort_by_key(|v| {
        std::cmp::Reverse(
            v.1.split_once('x')
                .map_or(0, |(_, h)| h.parse::<u32>().unwrap_or(0)),
        )
    });
    let resolutions: Vec<&str> = variants.iter().map(|v| v.1.as_str()).collect();
    assert_eq!(
        resolutions,
        vec!["1920x1080", "1280x720", "852x480", "640x360"],
        "{master}"
    );
    let hls_base = hls_url.trim_end_matches("master.m3u8").to_owned();
    for (uri, resolution, codecs) in &variants {
        assert!(
            codecs.starts_with("avc1.") && codecs.ends_with(",mp4a.40.2"),
            "{codecs}"
        );
        let streams = probe(&format!("{hls_base}{uri}"));
        let (w, h) = resolution.split_once('x').expect("WxH");
        let video = streams
            .iter()
            .find(|s| s.0 == "h264")
            .expect("an H.264 stream");
        assert_eq!(
            (video.1.to_string(), video.2.to_string()),
            (w.to_owned(), h.to_owned())
        );
        assert!(streams.iter().any(|s| s.0 == "aac"), "{streams:?}");
    }

    // LL-HLS: the playlist validates; a blocking reload for the next part answers once it
    // exists (with that part listed), and one far ahead is refused.
    let media_url = format!("{hls_base}{}", variants[1].0);
    let (_, text) = get_text(&http, &media_url).await;
    let (last, listed) = validate_live_playlist(&text);
    let next = last + 1;
    // The part after the newest one listed for the segment in progress.
    let want = listed
        .iter()
        .filter_map(|p| p.strip_prefix(&format!("seg{next}.")))
        .filter_map(|p| p.strip_suffix(".m4s")?.parse::<u32>().ok())
        .max()
        .map_or(0, |p| p + 1);
    let (status, blocked) = get_text(
        &http,
        &format!("{media_url}?_HLS_msn={next}&_HLS_part={want}"),
    )
    .await;
    assert_eq!(status, 200, "{blocked}");
    let (_, parts) = validate_live_playlist(&blocked);
    assert!(
        parts.iter().any(|p| p == &format!("seg{next}.{want}.m4s"))
            || blocked.contains(&format!("\nseg{next}.m4s")),
        "the answer lacks the part asked for: {blocked}"
    );
    assert!(!listed.contains(&format!("seg{next}.{want}.m4s")));
    let (status, body) = get_text(&http, &format!("{media_url}?_HLS_msn={}", next + 10)).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("invalid_blocking_request"), "{body}");
    let (status, _) = get_text(&http, &format!("{media_url}?_HLS_part=1")).await;
    assert_eq!(status, 400);
    // A part and a segment are served with the right types.
    let part = http
        .get(format!(
            "{}{}",
            media_url.trim_end_matches("index.m3u8"),
            parts.last().expect("a part")
        ))
        .send()
        .await
        .expect("part");
    assert_eq!(part.status(), 200);
    assert_eq!(part.headers()["access-control-allow-origin"], "*");
    assert!(
        part.headers()["cache-control"]
            .to_str()
            .unwrap_or("")
            .contains("immutable")
    );

    // The recording becomes a replay when the stream ends.
    let _ = ffmpeg.0.wait();
    let recordings_url = format!("{base}/api/v1/streams/{id}/recordings");
    let mut recording = Value::Null;
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let list: Value = http
            .get(&recordings_url)
            .bearer_auth(ADMIN)
            .send()
            .await
            .expect("recordings")
            .json()
            .await
            .expect("json");
        if list[0]["status"] == "ready" {
            recording = list[0].clone();
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(recording["status"], "ready", "{recording}");
    assert!(
        recording["duration_ms"].as_i64().unwrap_or(0) >= 10_000,
        "{recording}"
    );
    assert!(recording["size_bytes"].as_i64().unwrap_or(0) > 0);
    assert!(recording["expires_at"].is_string());
    let replay = recording["replay_url"]
        .as_str()
        .expect("replay_url")
        .to_owned();
    let (status, replay_master) = get_text(&http, &replay).await;
    assert_eq!(status, 200, "{replay_master}");
    let replay_base = replay.trim_end_matches("master.m3u8").to_owned();
    let (_, vod) = get_text(&http, &format!("{replay_base}720p/index.m3u8")).await;
    assert!(
        vod.contains("#EXT-X-PLAYLIST-TYPE:VOD") && vod.contains("#EXT-X-ENDLIST"),
        "{vod}"
    );
    let streams = probe(&format!("{replay_base}720p/index.m3u8"));
    assert!(
        streams.iter().any(|s| s.0 == "h264" && s.2 == 720),
        "{streams:?}"
    );
    let thumbnail = http
        .get(recording["thumbnail_url"].as_str().expect("thumbnail"))
        .send()
        .await
        .expect("thumbnail");
    assert_eq!(thumbnail.headers()["content-type"], "image/jpeg");
    // Range requests on replays.
    let ranged = http
        .get(format!("{replay_base}720p/seg1.m4s"))
        .header("Range", "bytes=0-99")
        .send()
        .await
        .expect("range");
    assert_eq!(ranged.status(), 206);
    assert_eq!(ranged.bytes().await.expect("bytes").len(), 100);

    // Retention: expire it now; the job deletes files and row.
    let rec_id = recording["id"].as_str().expect("id");
    binary::expire_recording(&http, &base, ADMIN, rec_id).await;
    let media_dir = server
        .data_dir
        .join("media")
        .join("recordings")
        .join(&id)
        .join(rec_id);
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut gone = false;
    while Instant::now() < deadline {
        let status = http
            .get(format!("{base}/api/v1/recordings/{rec_id}"))
            .bearer_auth(ADMIN)
            .send()
            .await
            .expect("get")
            .status();
        if status == 404 && !media_dir.exists() {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(gone, "the expired recording is still there");
    let (status, _) = get_text(&http, &replay).await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streams_recording_settings_change_for_its_next_session() {
    let server = binary::start_server_with(ADMIN, "warn", &[]);
    let base = server.base.clone();
    let http = reqwest::Client::new();
    let stream: Value = http
        .post(format!("{base}/api/v1/streams"))
        .bearer_auth(ADMIN)
        .json(&serde_json::json!({"title": "settings", "recording_retention_days": 3}))
        .send()
        .await
        .expect("create")
        .json()
        .await
        .expect("json");
    assert_eq!(stream["record"], true);
    assert_eq!(stream["recording_retention_days"], 3);
    let id = stream["id"].as_str().expect("id");
    let url = format!("{base}/api/v1/streams/{id}");
    let patch = |body: Value| http.patch(&url).bearer_auth(ADMIN).json(&body).send();
    let changed: Value = patch(serde_json::json!({"record": false}))
        .await
        .expect("patch")
        .json()
        .await
        .expect("json");
    assert_eq!(changed["record"], false);
    assert_eq!(
        changed["recording_retention_days"], 3,
        "left out: unchanged"
    );
    let changed: Value = patch(serde_json::json!({"recording_retention_days": null}))
        .await
        .expect("patch")
        .json()
        .await
        .expect("json");
    assert_eq!(changed["recording_retention_days"], Value::Null);
    for bad in [
        serde_json::json!({"recording_retention_days": 0}),
        serde_json::json!({"recording_retention_days": 5000}),
        serde_json::json!({"record": "yes"}),
        serde_json::json!({"title": "no"}),
    ] {
        let answer = patch(bad.clone()).await.expect("patch");
        assert_eq!(answer.status(), 422, "{bad}");
        let body: Value = answer.json().await.expect("json");
        assert_eq!(body["error"]["code"], "invalid_recording_setting", "{bad}");
    }
    // Recording off: a live session leaves no recording.
    let rtmp_url = stream["rtmp_url"].as_str().expect("rtmp").to_owned();
    let mut ffmpeg = ffmpeg_publish(&rtmp_url, "640x360", 5, 60, 2);
    let _ = ffmpeg.0.wait();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let list: Value = http
        .get(format!("{base}/api/v1/streams/{id}/recordings"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("recordings")
        .json()
        .await
        .expect("json");
    assert_eq!(list, serde_json::json!([]));
}
