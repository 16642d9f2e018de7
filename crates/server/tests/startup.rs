//! The binary starts, prints where to go, answers `/healthz`, reuses its admin token and
//! stream on a second start, and exits 0 on SIGTERM.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Server {
    child: Child,
    lines: Vec<String>,
}

/// Starts `greenroom serve` on free ports and reads its four banner lines.
fn start(data_dir: &std::path::Path) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_greenroom"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("GREENROOM_DATA_DIR", data_dir)
        .env("GREENROOM_HTTP_ADDR", "127.0.0.1:0")
        .env("GREENROOM_RTC_UDP_PORT", "0")
        .env("GREENROOM_RTC_WORKERS", "1")
        .env("GREENROOM_RTC_BIND_IP", "127.0.0.1")
        .env("GREENROOM_RTMP_ADDR", "127.0.0.1:0")
        .env("GREENROOM_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn greenroom");
    let stdout = child.stdout.take().expect("stdout");
    let mut reader = BufReader::new(stdout);
    let mut lines = Vec::new();
    while lines.len() < 4 {
        let mut line = String::new();
        if reader.read_line(&mut line).expect("read stdout") == 0 {
            let _ = child.kill();
            panic!("greenroom exited before its banner; got {lines:?}");
        }
        lines.push(line.trim_end().to_owned());
    }
    Server { child, lines }
}

fn base_url(server: &Server) -> String {
    let first = &server.lines[0];
    let url = first
        .strip_prefix("greenroom listening on ")
        .and_then(|rest| rest.split(' ').next())
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"));
    url.to_owned()
}

fn http_get(base_url: &str, path: &str) -> String {
    let authority = base_url.trim_start_matches("http://");
    let mut stream = TcpStream::connect(authority).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");
    answer
}

fn stop(mut server: Server) {
    let status = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(status) = server.child.try_wait().expect("wait") {
            assert_eq!(status.code(), Some(0), "clean exit on SIGTERM");
            return;
        }
        if Instant::now() > deadline {
            let _ = server.child.kill();
            panic!("greenroom did not stop within 15 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_binary_starts_prints_its_urls_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start(dir.path());
    let base = base_url(&server);
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");
    assert!(
        server.lines[1].starts_with("admin token: adm_"),
        "{:?}",
        server.lines
    );
    let studio = server.lines[2]
        .strip_prefix("studio: ")
        .expect("studio line")
        .to_owned();
    let watch = server.lines[3].strip_prefix("watch: ").expect("watch line");
    assert!(
        studio.starts_with(&format!("{base}/studio/")) && studio.contains("#key=sk_"),
        "{studio}"
    );
    assert!(watch.starts_with(&format!("{base}/watch/")), "{watch}");

    let health = http_get(&base, "/healthz");
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(health.ends_with("{\"status\":\"ok\"}"), "{health}");
    stop(server);

    // A second start reuses the stored token and the open stream.
    let again = start(dir.path());
    assert!(
        again.lines[1].starts_with("admin token: stored in"),
        "{:?}",
        again.lines
    );
    assert_eq!(
        again.lines[2].split("/studio/").nth(1),
        studio.split("/studio/").nth(1)
    );
    stop(again);
}
