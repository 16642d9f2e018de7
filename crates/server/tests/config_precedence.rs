//! Configuration precedence through the real binary: file < environment < flags.
//! `greenroom check-config` prints the effective configuration as JSON.

use std::process::{Command, Output};

use serde_json::Value;

const SETTINGS_ENV: [&str; 32] = [
    "GREENROOM_CONFIG",
    "GREENROOM_HTTP_ADDR",
    "GREENROOM_PUBLIC_URL",
    "GREENROOM_DATA_DIR",
    "GREENROOM_ADMIN_TOKEN",
    "GREENROOM_DATABASE_URL",
    "DATABASE_URL",
    "GREENROOM_RTC_UDP_PORT",
    "GREENROOM_RTC_WORKERS",
    "GREENROOM_RTC_BIND_IP",
    "GREENROOM_RTMP_ADDR",
    "GREENROOM_RTC_ADVERTISE_IPS",
    "GREENROOM_ICE_SERVERS",
    "GREENROOM_ICE_USERNAME",
    "GREENROOM_ICE_CREDENTIAL",
    "GREENROOM_LOG",
    "RUST_LOG",
    "GREENROOM_HLS",
    "GREENROOM_HLS_LADDER",
    "GREENROOM_HLS_PRESET",
    "GREENROOM_HLS_SEGMENT_MS",
    "GREENROOM_HLS_PART_MS",
    "GREENROOM_STORAGE_DIR",
    "GREENROOM_S3_BUCKET",
    "GREENROOM_S3_REGION",
    "GREENROOM_S3_ENDPOINT",
    "GREENROOM_S3_ACCESS_KEY_ID",
    "GREENROOM_S3_SECRET_ACCESS_KEY",
    "GREENROOM_S3_PATH_STYLE",
    "GREENROOM_S3_PREFIX",
    "GREENROOM_RECORDING_RETENTION_DAYS",
    "GREENROOM_RETENTION_INTERVAL_SECS",
];

/// Runs `greenroom check-config` with a clean settings environment plus `env`.
fn check_config(env: &[(&str, &str)], flags: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_greenroom"));
    command.arg("check-config").args(flags);
    for name in SETTINGS_ENV {
        command.env_remove(name);
    }
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("run greenroom")
}

fn effective(env: &[(&str, &str)], flags: &[&str]) -> Value {
    let output = check_config(env, flags);
    assert!(
        output.status.success(),
        "check-config failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("JSON on stdout")
}

fn config_file() -> tempfile::NamedTempFile {
    let file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(
        file.path(),
        "http_addr = \"127.0.0.1:1001\"\nrtc_workers = 1\nlog = \"warn\"\ndata_dir = \"/tmp/from-file\"\n",
    )
    .expect("write config");
    file
}

#[test]
fn the_file_beats_the_defaults() {
    let file = config_file();
    let path = file.path().to_str().expect("utf-8 path");
    let config = effective(&[("GREENROOM_CONFIG", path)], &[]);
    assert_eq!(config["http_addr"], "127.0.0.1:1001");
    assert_eq!(config["log"], "warn");
    assert_eq!(config["rtc_udp_port"], 8189, "unset: the default");
    let config = effective(&[], &["--config", path]);
    assert_eq!(config["http_addr"], "127.0.0.1:1001");
}

#[test]
fn the_environment_beats_the_file() {
    let file = config_file();
    let path = file.path().to_str().expect("utf-8 path");
    let config = effective(
        &[
            ("GREENROOM_CONFIG", path),
            ("GREENROOM_HTTP_ADDR", "127.0.0.1:2002"),
            ("GREENROOM_LOG", "debug"),
            (
                "GREENROOM_ICE_SERVERS",
                "stun:a.example:3478,stun:b.example:3478",
            ),
        ],
        &[],
    );
    assert_eq!(config["http_addr"], "127.0.0.1:2002");
    assert_eq!(config["log"], "debug");
    assert_eq!(
        config["data_dir"], "/tmp/from-file",
        "not in the environment: the file's"
    );
    assert_eq!(
        config["ice_servers"],
        serde_json::json!(["stun:a.example:3478", "stun:b.example:3478"])
    );
}

#[test]
fn flags_beat_the_environment() {
    let file = config_file();
    let path = file.path().to_str().expect("utf-8 path");
    let config = effective(
        &[
            ("GREENROOM_CONFIG", path),
            ("GREENROOM_HTTP_ADDR", "127.0.0.1:2002"),
        ],
        &["--http-addr", "127.0.0.1:3003", "--rtc-workers", "2"],
    );
    assert_eq!(config["http_addr"], "127.0.0.1:3003");
    assert_eq!(config["rtc_workers"], 2);
    assert_eq!(config["log"], "warn");
}

#[test]
fn database_url_is_read_from_either_variable_and_redacted() {
    let config = effective(&[("DATABASE_URL", "postgres://u:pw@db/greenroom")], &[]);
    assert_eq!(config["database_url"], "<set>");
    let config = effective(&[], &[]);
    assert_eq!(config["database_url"], Value::Null);
    let output = check_config(
        &[
            ("DATABASE_URL", "postgres://db/x"),
            ("GREENROOM_DATABASE_URL", "mysql://db/x"),
        ],
        &[],
    );
    assert_eq!(
        output.status.code(),
        Some(2),
        "GREENROOM_DATABASE_URL wins and is invalid"
    );
}

#[test]
fn an_invalid_setting_exits_2_with_a_clear_message() {
    let output = check_config(&[("GREENROOM_RTC_WORKERS", "0")], &[]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("invalid rtc_workers"), "{stderr}");

    let output = check_config(&[("GREENROOM_HTTP_ADDR", "not-an-address")], &[]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("http-addr") || stderr.contains("http_addr"),
        "{stderr}"
    );

    let output = check_config(&[], &["--config", "/nonexistent/greenroom.toml"]);
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn hls_and_storage_settings_resolve_and_are_checked() {
    let config = effective(
        &[
            ("GREENROOM_HLS_LADDER", "720:2500k,360"),
            ("GREENROOM_S3_BUCKET", "replays"),
            ("GREENROOM_S3_ENDPOINT", "http://127.0.0.1:9000"),
            ("GREENROOM_S3_ACCESS_KEY_ID", "key"),
            ("GREENROOM_S3_SECRET_ACCESS_KEY", "secret"),
            ("GREENROOM_S3_PATH_STYLE", "true"),
        ],
        &["--recording-retention-days", "30"],
    );
    assert_eq!(config["hls"], true);
    assert_eq!(config["hls_ladder"], "720:2500k,360");
    assert_eq!(config["recording_retention_days"], 30);
    assert_eq!(config["s3"]["bucket"], "replays");
    assert_eq!(config["s3"]["path_style"], true);
    assert_eq!(config["s3"]["secret_access_key"], "<set>");
    for (name, value) in [
        ("GREENROOM_HLS_LADDER", "721"),
        ("GREENROOM_HLS_PRESET", "warp"),
        ("GREENROOM_HLS_PART_MS", "2500"),
        ("GREENROOM_RECORDING_RETENTION_DAYS", "0"),
        ("GREENROOM_S3_ENDPOINT", "ftp://x"),
    ] {
        let mut env = vec![(name, value)];
        if name == "GREENROOM_S3_ENDPOINT" {
            env.push(("GREENROOM_S3_BUCKET", "b"));
        }
        let output = check_config(&env, &[]);
        assert_eq!(output.status.code(), Some(2), "{name}={value} was accepted");
    }
}
