use std::io::Write;

use clap::Parser;

use super::*;

fn file(contents: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    file.write_all(contents.as_bytes()).expect("write config");
    file
}

fn with_file(file: &tempfile::NamedTempFile) -> ServeArgs {
    ServeArgs {
        config: Some(file.path().to_owned()),
        ..ServeArgs::default()
    }
}

fn error_of(result: Result<Config, ConfigError>) -> String {
    match result {
        Ok(config) => panic!("expected an error, got {config:?}"),
        Err(err) => err.to_string(),
    }
}

#[test]
fn defaults_apply_when_nothing_is_set() {
    let config = Config::resolve(ServeArgs::default(), None).expect("defaults are valid");
    assert_eq!(config.http_addr, DEFAULT_HTTP_ADDR);
    assert_eq!(config.public_url, None);
    assert_eq!(config.data_dir, PathBuf::from("./greenroom-data"));
    assert_eq!(config.admin_token, None);
    assert_eq!(
        config.database_url(),
        "sqlite://./greenroom-data/greenroom.db?mode=rwc"
    );
    assert_eq!(config.rtc_udp_port, 8189);
    assert!(config.rtc_workers >= 1);
    assert_eq!(config.rtc_bind_ip, IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    assert!(config.rtc_advertise_ips.is_empty());
    assert!(config.ice_servers.is_empty());
    assert_eq!(config.log, DEFAULT_LOG);
}

#[test]
fn the_file_beats_the_defaults_and_flags_beat_the_file() {
    let toml = file(
        r#"
        http_addr = "127.0.0.1:9001"
        public_url = "https://live.example.com/"
        data_dir = "/var/lib/greenroom"
        rtc_udp_port = 20000
        rtc_workers = 3
        rtc_bind_ip = "10.0.0.5"
        rtc_advertise_ips = ["203.0.113.7"]
        ice_servers = ["stun:stun.example.com:3478"]
        log = "debug"
        "#,
    );
    let config = Config::resolve(with_file(&toml), None).expect("valid file");
    assert_eq!(
        config.http_addr,
        "127.0.0.1:9001".parse::<SocketAddr>().expect("addr")
    );
    assert_eq!(
        config.public_url.as_deref(),
        Some("https://live.example.com")
    );
    assert_eq!(config.data_dir, PathBuf::from("/var/lib/greenroom"));
    assert_eq!(config.rtc_udp_port, 20000);
    assert_eq!(config.rtc_workers, 3);
    assert_eq!(
        config.rtc_bind_ip,
        "10.0.0.5".parse::<IpAddr>().expect("ip")
    );
    assert_eq!(
        config.rtc_advertise_ips,
        ["203.0.113.7".parse::<IpAddr>().expect("ip")]
    );
    assert_eq!(config.ice_servers, ["stun:stun.example.com:3478"]);
    assert_eq!(config.log, "debug");

    let args = ServeArgs {
        http_addr: Some("127.0.0.1:9002".parse().expect("addr")),
        rtc_workers: Some(2),
        log: Some("warn".to_owned()),
        ..with_file(&toml)
    };
    let config = Config::resolve(args, None).expect("valid");
    assert_eq!(
        config.http_addr,
        "127.0.0.1:9002".parse::<SocketAddr>().expect("addr")
    );
    assert_eq!(config.rtc_workers, 2);
    assert_eq!(config.log, "warn");
    assert_eq!(
        config.rtc_udp_port, 20000,
        "unset flags keep the file's value"
    );
}

#[test]
fn the_database_url_comes_from_flags_then_database_url_then_the_file() {
    let toml = file(r#"database_url = "postgres://file/db""#);
    let env = Some("postgres://env/db".to_owned());
    let config = Config::resolve(with_file(&toml), None).expect("valid");
    assert_eq!(config.database_url(), "postgres://file/db");
    let config = Config::resolve(with_file(&toml), env.clone()).expect("valid");
    assert_eq!(config.database_url(), "postgres://env/db");
    let args = ServeArgs {
        database_url: Some("sqlite:///tmp/x.db".to_owned()),
        ..with_file(&toml)
    };
    let config = Config::resolve(args, env).expect("valid");
    assert_eq!(config.database_url(), "sqlite:///tmp/x.db");
}

#[test]
fn flags_parse_into_the_default_serve_command() {
    let cli = Cli::try_parse_from([
        "greenroom",
        "--http-addr",
        "127.0.0.1:7000",
        "--ice-servers",
        "stun:a.example:3478,stun:b.example:3478",
        "--rtc-advertise-ips",
        "192.0.2.1,2001:db8::1",
    ])
    .expect("valid flags");
    let (kind, args) = cli.into_command();
    assert_eq!(kind, CommandKind::Serve);
    assert_eq!(
        args.http_addr,
        Some("127.0.0.1:7000".parse().expect("addr"))
    );
    assert_eq!(
        args.ice_servers.as_deref(),
        Some(
            &[
                "stun:a.example:3478".to_owned(),
                "stun:b.example:3478".to_owned()
            ][..]
        )
    );
    assert_eq!(args.rtc_advertise_ips.map(|ips| ips.len()), Some(2));

    let cli = Cli::try_parse_from(["greenroom", "serve", "--rtc-workers", "4"]).expect("valid");
    assert_eq!(cli.into_command().1.rtc_workers, Some(4));
    let cli = Cli::try_parse_from(["greenroom", "check-config"]).expect("valid");
    assert_eq!(cli.into_command().0, CommandKind::CheckConfig);
    assert!(Cli::try_parse_from(["greenroom", "--http-addr", "nonsense"]).is_err());
}

#[test]
fn invalid_settings_are_refused_with_their_name() {
    let cases: Vec<(ServeArgs, &str)> = vec![
        (
            ServeArgs {
                public_url: Some("ftp://x".to_owned()),
                ..ServeArgs::default()
            },
            "invalid public_url",
        ),
        (
            ServeArgs {
                public_url: Some("https://".to_owned()),
                ..ServeArgs::default()
            },
            "invalid public_url",
        ),
        (
            ServeArgs {
                rtc_workers: Some(0),
                ..ServeArgs::default()
            },
            "invalid rtc_workers",
        ),
        (
            ServeArgs {
                rtc_udp_port: Some(65535),
                rtc_workers: Some(2),
                ..ServeArgs::default()
            },
            "invalid rtc_udp_port",
        ),
        (
            ServeArgs {
                ice_servers: Some(vec!["turn:turn.example.com".to_owned()]),
                ..ServeArgs::default()
            },
            "invalid ice_servers",
        ),
        (
            ServeArgs {
                ice_servers: Some(vec!["http://x".to_owned()]),
                ..ServeArgs::default()
            },
            "invalid ice_servers",
        ),
        (
            ServeArgs {
                log: Some("info,[=".to_owned()),
                ..ServeArgs::default()
            },
            "invalid log",
        ),
        (
            ServeArgs {
                admin_token: Some("short".to_owned()),
                ..ServeArgs::default()
            },
            "invalid admin_token",
        ),
        (
            ServeArgs {
                database_url: Some("mysql://root@localhost/db".to_owned()),
                ..ServeArgs::default()
            },
            "invalid database_url",
        ),
        (
            ServeArgs {
                rtc_advertise_ips: Some(vec![IpAddr::V4(Ipv4Addr::UNSPECIFIED)]),
                ..ServeArgs::default()
            },
            "invalid rtc_advertise_ips",
        ),
    ];
    for (args, expected) in cases {
        let message = error_of(Config::resolve(args.clone(), None));
        assert!(message.starts_with(expected), "{args:?}: {message}");
    }
}

#[test]
fn a_bad_file_is_refused_with_its_path() {
    let unknown = file("http_adr = \"127.0.0.1:1\"\n");
    let message = error_of(Config::resolve(with_file(&unknown), None));
    assert!(message.contains("invalid configuration file"), "{message}");
    assert!(message.contains("http_adr"), "{message}");
    let wrong_type = file("rtc_workers = \"four\"\n");
    assert!(error_of(Config::resolve(with_file(&wrong_type), None)).contains("rtc_workers"));
    let args = ServeArgs {
        config: Some(PathBuf::from("/nonexistent/greenroom.toml")),
        ..ServeArgs::default()
    };
    assert!(error_of(Config::resolve(args, None)).contains("/nonexistent/greenroom.toml"));
}

#[test]
fn turn_servers_get_the_credentials_and_stun_servers_do_not() {
    let args = ServeArgs {
        ice_servers: Some(vec![
            "stun:stun.example.com".to_owned(),
            " turn:turn.example.com?transport=udp ".to_owned(),
            String::new(),
        ]),
        ice_username: Some("user".to_owned()),
        ice_credential: Some("pass".to_owned()),
        ..ServeArgs::default()
    };
    let servers = Config::resolve(args, None).expect("valid").ice_servers();
    assert_eq!(servers.len(), 2);
    assert_eq!(servers[0].username, None);
    assert_eq!(servers[1].urls, ["turn:turn.example.com?transport=udp"]);
    assert_eq!(servers[1].username.as_deref(), Some("user"));
    assert_eq!(servers[1].credential.as_deref(), Some("pass"));
}

#[test]
fn the_public_url_defaults_to_the_bound_address_with_loopback_for_any() {
    let config = Config::resolve(ServeArgs::default(), None).expect("valid");
    assert_eq!(
        config.public_url_for("0.0.0.0:8080".parse().expect("addr")),
        "http://127.0.0.1:8080"
    );
    assert_eq!(
        config.public_url_for("[::]:8080".parse().expect("addr")),
        "http://[::1]:8080"
    );
    assert_eq!(
        config.public_url_for("192.0.2.4:80".parse().expect("addr")),
        "http://192.0.2.4:80"
    );
}

#[test]
fn secrets_are_redacted_when_printed() {
    let args = ServeArgs {
        admin_token: Some("a-very-secret-admin-token".to_owned()),
        database_url: Some("postgres://u:pw@h/db".to_owned()),
        ..ServeArgs::default()
    };
    let json = serde_json::to_string(&Config::resolve(args, None).expect("valid")).expect("json");
    assert!(!json.contains("a-very-secret"), "{json}");
    assert!(!json.contains("pw@"), "{json}");
    assert!(json.contains("\"admin_token\":\"<set>\""), "{json}");
}

#[test]
fn the_example_file_documents_every_setting_and_parses_uncommented() {
    let example = include_str!("../../../../deploy/greenroom.example.toml");
    let keys = [
        "http_addr",
        "public_url",
        "data_dir",
        "admin_token",
        "database_url",
        "rtc_udp_port",
        "rtc_workers",
        "rtc_detach_viewers",
        "rtc_bind_ip",
        "rtc_advertise_ips",
        "ice_servers",
        "ice_username",
        "ice_credential",
        "log",
        "hls",
        "hls_ladder",
        "hls_preset",
        "hls_segment_ms",
        "hls_part_ms",
        "recording_retention_days",
        "retention_interval_secs",
        "playback_token_ttl_secs",
        "stripe_api_base",
        "platform_fee_bps",
        "currency",
        "tip_min",
        "tip_max",
        "token_packs",
    ];
    // Documented, left commented (the key file does not exist here).
    for key in ["jwt_public_key_file", "jwt_issuer", "jwt_audience"] {
        assert!(
            example.contains(&format!("# {key} = ")),
            "{key} is documented"
        );
    }
    let uncommented: String = example
        .lines()
        .map(|line| match line.strip_prefix("# ") {
            Some(rest)
                if keys
                    .iter()
                    .any(|key| rest.starts_with(&format!("{key} = "))) =>
            {
                rest
            }
            _ => line,
        })
        .collect::<Vec<_>>()
        .join("\n");
    for key in keys {
        assert!(
            uncommented
                .lines()
                .any(|line| line.starts_with(&format!("{key} = "))),
            "{key} is documented"
        );
    }
    let file = file(&uncommented);
    let config = Config::resolve(with_file(&file), None).expect("the example is valid");
    assert_eq!(
        config.public_url.as_deref(),
        Some("https://live.example.com")
    );
    assert_eq!(config.ice_servers().len(), 2);
    assert!(config.hls);
    assert_eq!(config.recording_retention_days, 7);
}

#[test]
fn an_s3_section_in_the_file_turns_s3_storage_on() {
    let file = file(
        "[storage]\ndir = \"/srv/media\"\n[storage.s3]\nbucket = \"replays\"\n\
         endpoint = \"http://minio:9000\"\npath_style = true\n",
    );
    let config = Config::resolve(with_file(&file), None).expect("valid");
    let s3 = config.s3.expect("s3");
    assert_eq!(s3.bucket, "replays");
    assert_eq!(s3.region, "us-east-1");
    assert!(s3.path_style);
    assert_eq!(
        config.storage_dir,
        Some(std::path::PathBuf::from("/srv/media"))
    );
}

#[test]
fn business_settings_have_defaults() {
    let config = Config::resolve(ServeArgs::default(), None).expect("defaults are valid");
    assert_eq!(config.playback_key, None);
    assert_eq!(config.playback_token_ttl_secs, 600);
    assert_eq!(config.stripe_secret_key, None);
    assert_eq!(config.stripe_api_base, None);
    assert_eq!(config.platform_fee_bps, 500);
    assert_eq!((config.tip_min, config.tip_max), (1, 1000));
    assert_eq!(config.currency, "usd");
    let packs: Vec<(&str, i64, i64, &str)> = config
        .token_packs
        .iter()
        .map(|p| (p.id.as_str(), p.tokens, p.amount_minor, p.currency.as_str()))
        .collect();
    assert_eq!(
        packs,
        [
            ("small", 100, 499, "usd"),
            ("medium", 500, 1999, "usd"),
            ("large", 1200, 3999, "usd")
        ]
    );
    assert!(config.identity_config().expect("valid").is_none());
}

#[test]
fn business_settings_come_from_the_file_and_flags() {
    let toml = file(
        r#"
        playback_token_ttl_secs = 120
        stripe_api_base = "http://127.0.0.1:12111/"
        platform_fee_bps = 1000
        tip_min = 2
        tip_max = 50
        currency = "EUR"
        token_packs = "mini:10:99"
        jwt_issuer = "https://id.example.com"
        jwt_audience = "greenroom"
        "#,
    );
    let args = ServeArgs {
        tip_max: Some(40),
        stripe_secret_key: Some("sk_test_123".to_owned()),
        stripe_webhook_secret: Some("whsec_abc".to_owned()),
        jwt_hs256_secret: Some("x".repeat(32)),
        playback_key: Some("k".repeat(32)),
        ..with_file(&toml)
    };
    let config = Config::resolve(args, None).expect("valid");
    assert_eq!(config.playback_token_ttl_secs, 120);
    assert_eq!(
        config.stripe_api_base.as_deref(),
        Some("http://127.0.0.1:12111")
    );
    assert_eq!(config.platform_fee_bps, 1000);
    assert_eq!((config.tip_min, config.tip_max), (2, 40));
    assert_eq!(config.currency, "eur");
    assert_eq!(config.token_packs.len(), 1);
    assert_eq!(config.token_packs[0].currency, "eur");
    let identity = config.identity_config().expect("valid").expect("on");
    assert_eq!(identity.issuer, "https://id.example.com");
    // Secrets never appear in check-config.
    let json = serde_json::to_string(&config).expect("json");
    for secret in ["sk_test_123", "whsec_abc", "xxxxxxxx", "kkkkkkkk"] {
        assert!(!json.contains(secret), "{json}");
    }
    assert!(json.contains("\"stripe_secret_key\":\"<set>\""), "{json}");
    // Secrets are not read from the file.
    let secret_in_file = file("stripe_secret_key = \"sk_test_123\"\n");
    assert!(error_of(Config::resolve(with_file(&secret_in_file), None)).contains("unknown field"));
}

#[test]
fn a_jwt_public_key_file_is_read_and_checked_at_start_up() {
    let pem = file(include_str!(
        "../../../control/tests/data/jwt_es256_public.pem"
    ));
    let args = ServeArgs {
        jwt_public_key_file: Some(pem.path().to_owned()),
        jwt_issuer: Some("https://id.example.com".to_owned()),
        jwt_audience: Some("greenroom".to_owned()),
        ..ServeArgs::default()
    };
    let config = Config::resolve(args.clone(), None).expect("valid");
    let identity = greenroom_control::ExternalIdentity::new(
        config.identity_config().expect("read").expect("on"),
    )
    .expect("usable");
    assert_eq!(identity.algorithm(), "ES256");
    let not_a_key = file("hello\n");
    let message = error_of(Config::resolve(
        ServeArgs {
            jwt_public_key_file: Some(not_a_key.path().to_owned()),
            ..args.clone()
        },
        None,
    ));
    assert!(
        message.starts_with("invalid jwt_public_key_file"),
        "{message}"
    );
    let message = error_of(Config::resolve(
        ServeArgs {
            jwt_public_key_file: Some(PathBuf::from("/nonexistent/key.pem")),
            ..args
        },
        None,
    ));
    assert!(message.contains("/nonexistent/key.pem"), "{message}");
}

#[test]
fn invalid_business_settings_are_refused_with_their_name() {
    let stripe = |key: &str, secret: &str| ServeArgs {
        stripe_secret_key: Some(key.to_owned()),
        stripe_webhook_secret: Some(secret.to_owned()),
        ..ServeArgs::default()
    };
    let cases: Vec<(ServeArgs, &str)> = vec![
        (
            ServeArgs {
                playback_key: Some("too-short".to_owned()),
                ..ServeArgs::default()
            },
            "invalid playback_key",
        ),
        (
            ServeArgs {
                playback_token_ttl_secs: Some(0),
                ..ServeArgs::default()
            },
            "invalid playback_token_ttl_secs",
        ),
        (
            ServeArgs {
                stripe_secret_key: Some("sk_test_1".to_owned()),
                ..ServeArgs::default()
            },
            "invalid stripe_secret_key",
        ),
        (stripe("pk_test_1", "whsec_1"), "invalid stripe_secret_key"),
        (
            stripe("sk_test_1", "secret"),
            "invalid stripe_webhook_secret",
        ),
        (
            ServeArgs {
                stripe_api_base: Some("api.stripe.com".to_owned()),
                ..ServeArgs::default()
            },
            "invalid stripe_api_base",
        ),
        (
            ServeArgs {
                platform_fee_bps: Some(5001),
                ..ServeArgs::default()
            },
            "invalid platform_fee_bps",
        ),
        (
            ServeArgs {
                tip_min: Some(0),
                ..ServeArgs::default()
            },
            "invalid tip_min",
        ),
        (
            ServeArgs {
                tip_min: Some(10),
                tip_max: Some(5),
                ..ServeArgs::default()
            },
            "invalid tip_min",
        ),
        (
            ServeArgs {
                currency: Some("dollars".to_owned()),
                ..ServeArgs::default()
            },
            "invalid currency",
        ),
        (
            ServeArgs {
                token_packs: Some("small:100".to_owned()),
                ..ServeArgs::default()
            },
            "invalid token_packs",
        ),
        (
            ServeArgs {
                token_packs: Some("a:1:1,a:2:2".to_owned()),
                ..ServeArgs::default()
            },
            "invalid token_packs",
        ),
        (
            ServeArgs {
                token_packs: Some("Big Pack:1:1".to_owned()),
                ..ServeArgs::default()
            },
            "invalid token_packs",
        ),
        (
            ServeArgs {
                token_packs: Some("a:0:100".to_owned()),
                ..ServeArgs::default()
            },
            "invalid token_packs",
        ),
        (
            ServeArgs {
                jwt_hs256_secret: Some("s".repeat(32)),
                ..ServeArgs::default()
            },
            "invalid jwt_issuer",
        ),
        (
            ServeArgs {
                jwt_hs256_secret: Some("short".to_owned()),
                jwt_issuer: Some("iss".to_owned()),
                jwt_audience: Some("aud".to_owned()),
                ..ServeArgs::default()
            },
            "invalid jwt_hs256_secret",
        ),
        (
            ServeArgs {
                jwt_hs256_secret: Some("s".repeat(32)),
                jwt_public_key_file: Some(PathBuf::from("/k.pem")),
                jwt_issuer: Some("iss".to_owned()),
                jwt_audience: Some("aud".to_owned()),
                ..ServeArgs::default()
            },
            "invalid jwt_hs256_secret",
        ),
        (
            ServeArgs {
                jwt_issuer: Some("iss".to_owned()),
                ..ServeArgs::default()
            },
            "invalid jwt_issuer",
        ),
    ];
    for (args, expected) in cases {
        let message = error_of(Config::resolve(args.clone(), None));
        assert!(message.starts_with(expected), "{args:?}: {message}");
    }
    // An empty list sells no packs.
    let config = Config::resolve(
        ServeArgs {
            token_packs: Some(String::new()),
            ..ServeArgs::default()
        },
        None,
    )
    .expect("valid");
    assert!(config.token_packs.is_empty());
}
