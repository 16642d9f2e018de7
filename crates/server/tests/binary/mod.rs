//! Starting the real `greenroom` binary for an end-to-end test: SQLite in a temporary data
//! directory, HTTP, RTMP and WebRTC on free loopback ports, a known admin token. The server is
//! stopped (SIGTERM) when the handle is dropped.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

pub struct Server {
    child: Child,
    pub base: String,
    dir: Option<tempfile::TempDir>,
    /// The server's data directory.
    pub data_dir: std::path::PathBuf,
}

impl Server {
    /// Stops the server (SIGTERM) and waits for it to exit.
    pub fn stop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }

    /// Stops the server and hands back its data directory (to start again on it).
    pub fn stop_keep_dir(mut self) -> tempfile::TempDir {
        self.stop();
        self.dir.take().expect("data directory")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// Starts the binary with HLS off; `log` is its `GREENROOM_LOG` filter.
pub fn start_server(admin_token: &str, log: &str) -> Server {
    start_server_with(admin_token, log, &[("GREENROOM_HLS", "false")])
}

/// Starts the binary with more settings (`GREENROOM_*` names and values).
pub fn start_server_with(admin_token: &str, log: &str, env: &[(&str, &str)]) -> Server {
    let dir = tempfile::tempdir().expect("temp dir");
    start_in(dir, admin_token, log, env)
}

/// Starts the binary on an existing data directory (a restart).
pub fn start_in(
    dir: tempfile::TempDir,
    admin_token: &str,
    log: &str,
    env: &[(&str, &str)],
) -> Server {
    let mut command = Command::new(env!("CARGO_BIN_EXE_greenroom"));
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("GREENROOM_DATA_DIR", dir.path())
        .env("GREENROOM_HTTP_ADDR", "127.0.0.1:0")
        .env("GREENROOM_RTMP_ADDR", "127.0.0.1:0")
        .env("GREENROOM_RTC_UDP_PORT", "0")
        .env("GREENROOM_RTC_WORKERS", "2")
        .env("GREENROOM_RTC_BIND_IP", "127.0.0.1")
        .env("GREENROOM_ADMIN_TOKEN", admin_token)
        .env("GREENROOM_LOG", log);
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn greenroom");
    let mut reader = BufReader::new(child.stdout.take().expect("stdout"));
    let mut first = String::new();
    reader.read_line(&mut first).expect("banner");
    // Keep reading what the server prints so it never writes into a closed pipe.
    std::thread::spawn(move || {
        let mut sink = String::new();
        while reader.read_line(&mut sink).unwrap_or(0) > 0 {
            sink.clear();
        }
    });
    let base = first
        .trim()
        .strip_prefix("greenroom listening on ")
        .and_then(|rest| rest.split(' ').next())
        .unwrap_or_else(|| panic!("unexpected banner {first:?}"))
        .to_owned();
    Server {
        child,
        base,
        data_dir: dir.path().to_owned(),
        dir: Some(dir),
    }
}

/// Sets a recording's expiry in the past (the retention job then deletes it).
pub async fn expire_recording(http: &reqwest::Client, base: &str, admin: &str, id: &str) {
    let patched = http
        .patch(format!("{base}/api/v1/recordings/{id}"))
        .bearer_auth(admin)
        .json(&serde_json::json!({"expires_at": "2020-01-01T00:00:00Z"}))
        .send()
        .await
        .expect("PATCH the recording");
    assert_eq!(patched.status(), 200, "expiring recording {id}");
}

/// A child process killed when the test is done with it, whatever happens.
pub struct Kill(pub Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Debian's ffmpeg publishing a `size` 30 fps test pattern (libx264, a keyframe every `gop`
/// frames, `b_frames` B-frames) and a 440 Hz AAC tone over RTMP for `seconds`, as OBS would.
pub fn ffmpeg_publish(url: &str, size: &str, seconds: u32, gop: u32, b_frames: u32) -> Kill {
    let child = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-re"])
        .args(["-f", "lavfi", "-i", &format!("testsrc=size={size}:rate=30")])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args(["-t", &seconds.to_string()])
        .args(["-c:v", "libx264", "-preset", "ultrafast"])
        .args(["-g", &gop.to_string(), "-bf", &b_frames.to_string()])
        .args([
            "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "96k", "-f", "flv", url,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("ffmpeg on PATH (Debian package ffmpeg)");
    Kill(child)
}

/// Signs an account up (`POST /api/v1/accounts`, role `viewer` or `creator`) and in again
/// (`POST /api/v1/sessions`); the page session token of the sign-in.
pub async fn sign_up_and_in(http: &reqwest::Client, base: &str, email: &str, role: &str) -> String {
    let password = "correct horse battery staple";
    let display_name = email.split('@').next().unwrap_or("someone");
    let signed_up = http
        .post(format!("{base}/api/v1/accounts"))
        .json(&serde_json::json!({
            "email": email,
            "password": password,
            "display_name": display_name,
            "role": role,
        }))
        .send()
        .await
        .expect("POST /api/v1/accounts");
    assert_eq!(signed_up.status(), 201, "signing up {email}");
    let session: serde_json::Value = http
        .post(format!("{base}/api/v1/sessions"))
        .json(&serde_json::json!({"email": email, "password": password}))
        .send()
        .await
        .expect("POST /api/v1/sessions")
        .json()
        .await
        .expect("session JSON");
    session["token"]
        .as_str()
        .unwrap_or_else(|| panic!("no token in {session}"))
        .to_owned()
}
