//! The admin token: configured, or generated on first start and kept in
//! `{data_dir}/admin_token` (mode 0600) for the next starts.

use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use rand::Rng;

const FILE_NAME: &str = "admin_token";
const PREFIX: &str = "adm_";
const RANDOM_LEN: usize = 40;
const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const MIN_CHARS: usize = 16;

/// Where the token in use came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenOrigin {
    /// `admin_token` setting.
    Configured,
    /// Generated now and written to this file.
    Generated(PathBuf),
    /// Read from this file, written by an earlier start.
    Stored(PathBuf),
}

#[derive(Clone)]
pub struct AdminToken {
    pub token: String,
    pub origin: TokenOrigin,
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminToken")
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

/// The configured token, else the stored one, else a new one (stored). `data_dir` must exist.
pub fn resolve(configured: Option<&str>, data_dir: &Path) -> anyhow::Result<AdminToken> {
    if let Some(token) = configured {
        return Ok(AdminToken {
            token: token.to_owned(),
            origin: TokenOrigin::Configured,
        });
    }
    let path = data_dir.join(FILE_NAME);
    match read(&path)? {
        Some(token) => Ok(AdminToken {
            token,
            origin: TokenOrigin::Stored(path),
        }),
        None => {
            let token = generate();
            match create(&path, &token) {
                Ok(()) => Ok(AdminToken {
                    token,
                    origin: TokenOrigin::Generated(path),
                }),
                // Another process created it in between: use theirs.
                Err(err) if err.kind() == ErrorKind::AlreadyExists => {
                    let token = read(&path)?
                        .with_context(|| format!("{} vanished while starting", path.display()))?;
                    Ok(AdminToken {
                        token,
                        origin: TokenOrigin::Stored(path),
                    })
                }
                Err(err) => Err(err)
                    .with_context(|| format!("cannot write the admin token to {}", path.display())),
            }
        }
    }
}

fn read(path: &Path) -> anyhow::Result<Option<String>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == ErrorKind::NotFound => return Ok(None),
        Err(err) => {
            return Err(err)
                .with_context(|| format!("cannot read the admin token {}", path.display()));
        }
    };
    let token = text.trim();
    if token.chars().count() < MIN_CHARS || !token.chars().all(|c| c.is_ascii_graphic()) {
        bail!(
            "the admin token in {} is malformed (at least {MIN_CHARS} printable characters); \
             delete the file to generate a new one",
            path.display()
        );
    }
    Ok(Some(token.to_owned()))
}

fn create(path: &Path, token: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(token.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()
}

fn generate() -> String {
    let mut rng = rand::rng();
    let random: String = (0..RANDOM_LEN)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect();
    format!("{PREFIX}{random}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_configured_token_wins_and_writes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let token = resolve(Some("configured-token-123"), dir.path()).expect("resolve");
        assert_eq!(token.token, "configured-token-123");
        assert_eq!(token.origin, TokenOrigin::Configured);
        assert!(!dir.path().join(FILE_NAME).exists());
    }

    #[test]
    fn a_generated_token_is_stored_private_and_reused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = resolve(None, dir.path()).expect("generate");
        let path = dir.path().join(FILE_NAME);
        assert_eq!(first.origin, TokenOrigin::Generated(path.clone()));
        assert!(first.token.starts_with(PREFIX));
        assert_eq!(first.token.len(), PREFIX.len() + RANDOM_LEN);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path)
                .expect("metadata")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let second = resolve(None, dir.path()).expect("reuse");
        assert_eq!(second.token, first.token);
        assert_eq!(second.origin, TokenOrigin::Stored(path));
        assert!(!format!("{second:?}").contains(&second.token));
    }

    #[test]
    fn a_malformed_stored_token_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(FILE_NAME), "short\n").expect("write");
        let err = resolve(None, dir.path())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("delete the file"), "{err}");
    }
}
