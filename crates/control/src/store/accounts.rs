//! Accounts and their tokens. Passwords are hashed with argon2id (on a blocking thread: it is
//! deliberately slow); tokens are 32 random bytes, stored as their SHA-256.

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, now_ms};
use crate::ControlError;
use crate::account::{Account, IssuedToken, Role, TokenKind, check_password, normalize_email};
use crate::stream::{generate_id, validate_title};

const ACCOUNT_COLUMNS: &str = "id, email, display_name, role, created_at_ms";

/// A hash to verify against when the email is unknown, so that a wrong email takes as long
/// as a wrong password.
fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| hash_password("greenroom timing equalizer").unwrap_or_default())
}

fn hash_password(password: &str) -> Result<String, ControlError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| ControlError::Internal {
            operation: "hashing a password",
            reason: e.to_string(),
        })
}

fn password_matches(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ControlError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ControlError::Internal {
            operation: "the password worker",
            reason: e.to_string(),
        })
}

fn token_hash(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Store {
    /// Creates an account with an email (unique, case-insensitive) and a password.
    pub async fn create_account(
        &self,
        email: &str,
        password: &str,
        display_name: &str,
        role: Role,
    ) -> Result<Account, ControlError> {
        let email = normalize_email(email)?;
        check_password(password)?;
        let display_name =
            validate_title(display_name).map_err(|_| ControlError::InvalidDisplayName {
                reason: "the display name must have 1 to 200 characters".to_owned(),
            })?;
        let password = password.to_owned();
        let hash = blocking(move || hash_password(&password)).await??;
        let account = Account {
            id: generate_id(),
            email,
            display_name,
            role,
            created_at_ms: now_ms(),
        };
        let inserted = sqlx::query(
            "INSERT INTO accounts (id, email, password_hash, display_name, role, created_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (email) DO NOTHING",
        )
        .bind(&account.id)
        .bind(&account.email)
        .bind(&hash)
        .bind(&account.display_name)
        .bind(account.role.as_db())
        .bind(account.created_at_ms)
        .execute(&self.pool)
        .await
        .map_err(ControlError::database("creating an account"))?
        .rows_affected();
        if inserted == 0 {
            return Err(ControlError::EmailTaken);
        }
        tracing::info!(account = %account.id, role = account.role.as_db(), "account created");
        Ok(account)
    }

    /// The account whose email and password these are; [`ControlError::InvalidCredentials`]
    /// otherwise (the same answer, in about the same time, for an unknown email).
    pub async fn authenticate(&self, email: &str, password: &str) -> Result<Account, ControlError> {
        let email = normalize_email(email).map_err(|_| ControlError::InvalidCredentials)?;
        let row = sqlx::query(&format!(
            "SELECT {ACCOUNT_COLUMNS}, password_hash FROM accounts WHERE email = $1"
        ))
        .bind(&email)
        .fetch_optional(&self.pool)
        .await
        .map_err(ControlError::database("finding an account"))?;
        let (account, hash) = match &row {
            Some(row) => {
                let hash: Option<String> = row
                    .try_get(5)
                    .map_err(ControlError::database("reading an account"))?;
                (Some(account_from_row(row)?), hash)
            }
            None => (None, None),
        };
        let password = password.to_owned();
        let matches = blocking(move || match hash {
            Some(hash) => password_matches(&password, &hash),
            None => {
                let _ = password_matches(&password, dummy_hash());
                false
            }
        })
        .await?;
        match account {
            Some(account) if matches => Ok(account),
            _ => Err(ControlError::InvalidCredentials),
        }
    }

    /// The account with this id.
    pub async fn get_account(&self, id: &str) -> Result<Account, ControlError> {
        let row = sqlx::query(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(ControlError::database("reading an account"))?;
        row.as_ref()
            .map(account_from_row)
            .transpose()?
            .ok_or_else(|| ControlError::AccountNotFound { id: id.to_owned() })
    }

    /// Issues a token for `account_id`: a page session lasting `ttl_ms`, or an API token
    /// (`ttl_ms` `None`) valid until revoked.
    pub async fn issue_token(
        &self,
        account_id: &str,
        kind: TokenKind,
        name: Option<&str>,
        ttl_ms: Option<i64>,
    ) -> Result<IssuedToken, ControlError> {
        self.get_account(account_id).await?;
        let secret = format!(
            "{}{}",
            kind.prefix(),
            URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
        );
        let now = now_ms();
        let issued = IssuedToken {
            id: generate_id(),
            expires_at_ms: ttl_ms.map(|ttl| now + ttl.max(1)),
            secret,
            kind,
        };
        sqlx::query(
            "INSERT INTO account_tokens \
             (token_hash, id, account_id, kind, name, created_at_ms, expires_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(token_hash(&issued.secret))
        .bind(&issued.id)
        .bind(account_id)
        .bind(kind.as_db())
        .bind(name)
        .bind(now)
        .bind(issued.expires_at_ms)
        .execute(&self.pool)
        .await
        .map_err(ControlError::database("issuing a token"))?;
        Ok(issued)
    }

    /// The account a bearer token belongs to, if the token exists, has not expired and has
    /// not been revoked; [`ControlError::InvalidCredentials`] otherwise.
    pub async fn account_for_token(
        &self,
        secret: &str,
    ) -> Result<(Account, TokenKind), ControlError> {
        if secret.len() > 100 {
            return Err(ControlError::InvalidCredentials);
        }
        let row = sqlx::query(
            "SELECT a.id, a.email, a.display_name, a.role, a.created_at_ms, t.kind \
             FROM account_tokens t JOIN accounts a ON a.id = t.account_id \
             WHERE t.token_hash = $1 AND t.revoked_at_ms IS NULL \
             AND (t.expires_at_ms IS NULL OR t.expires_at_ms > $2)",
        )
        .bind(token_hash(secret))
        .bind(now_ms())
        .fetch_optional(&self.pool)
        .await
        .map_err(ControlError::database("checking a token"))?;
        let Some(row) = row else {
            return Err(ControlError::InvalidCredentials);
        };
        let kind: String = row
            .try_get(5)
            .map_err(ControlError::database("reading a token"))?;
        let kind = if kind == "api" {
            TokenKind::Api
        } else {
            TokenKind::Session
        };
        Ok((account_from_row(&row)?, kind))
    }

    /// Revokes one of `account_id`'s tokens by id; false when it has no such live token.
    pub async fn revoke_token(
        &self,
        account_id: &str,
        token_id: &str,
    ) -> Result<bool, ControlError> {
        let revoked = sqlx::query(
            "UPDATE account_tokens SET revoked_at_ms = $1 \
             WHERE id = $2 AND account_id = $3 AND revoked_at_ms IS NULL",
        )
        .bind(now_ms())
        .bind(token_id)
        .bind(account_id)
        .execute(&self.pool)
        .await
        .map_err(ControlError::database("revoking a token"))?
        .rows_affected();
        Ok(revoked > 0)
    }

    /// Revokes the token `secret` of `account_id` (signing out); false when it is not one of
    /// the account's live tokens.
    pub async fn revoke_token_secret(
        &self,
        account_id: &str,
        secret: &str,
    ) -> Result<bool, ControlError> {
        let revoked = sqlx::query(
            "UPDATE account_tokens SET revoked_at_ms = $1 \
             WHERE token_hash = $2 AND account_id = $3 AND revoked_at_ms IS NULL",
        )
        .bind(now_ms())
        .bind(token_hash(secret))
        .bind(account_id)
        .execute(&self.pool)
        .await
        .map_err(ControlError::database("revoking a token"))?
        .rows_affected();
        Ok(revoked > 0)
    }

    /// The account an external identity stands for (`subject` is `"{iss}|{sub}"`), created on
    /// first sight: with `email` when it is a valid address no other account has, else
    /// `{sha256(subject) in hex, 32 digits}@external.invalid`; named `display_name` (or
    /// "viewer"); with `role` and no password. An existing account is returned as it is. Safe
    /// under concurrent first sights: the UNIQUE `external_subject` decides and the loser reads
    /// the winner's row.
    pub async fn account_for_external(
        &self,
        subject: &str,
        email: Option<&str>,
        display_name: Option<&str>,
        role: Role,
    ) -> Result<Account, ControlError> {
        if subject.is_empty() || subject.len() > 1024 {
            return Err(ControlError::InvalidIdentityToken {
                reason: "the external subject is empty or too long".to_owned(),
            });
        }
        if let Some(account) = self.external_account(subject).await? {
            return Ok(account);
        }
        let display_name = display_name
            .and_then(|name| validate_title(name).ok())
            .unwrap_or_else(|| "viewer".to_owned());
        let mut emails: Vec<String> = email
            .and_then(|e| normalize_email(e).ok())
            .into_iter()
            .collect();
        emails.push(format!("{}@external.invalid", &token_hash(subject)[..32]));
        for email in emails {
            let account = Account {
                id: generate_id(),
                email,
                display_name: display_name.clone(),
                role,
                created_at_ms: now_ms(),
            };
            let inserted = sqlx::query(
                "INSERT INTO accounts \
                 (id, email, password_hash, display_name, role, external_subject, created_at_ms) \
                 VALUES ($1, $2, NULL, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            )
            .bind(&account.id)
            .bind(&account.email)
            .bind(&account.display_name)
            .bind(account.role.as_db())
            .bind(subject)
            .bind(account.created_at_ms)
            .execute(&self.pool)
            .await
            .map_err(ControlError::database("creating an external account"))?
            .rows_affected();
            if inserted == 1 {
                tracing::info!(
                    account = %account.id,
                    role = account.role.as_db(),
                    "external account created"
                );
                return Ok(account);
            }
            // Another request created it first, or the email belongs to another account
            // (then the next, made-up address is tried).
            if let Some(account) = self.external_account(subject).await? {
                return Ok(account);
            }
        }
        Err(ControlError::EmailTaken)
    }

    async fn external_account(&self, subject: &str) -> Result<Option<Account>, ControlError> {
        let row = sqlx::query(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE external_subject = $1"
        ))
        .bind(subject)
        .fetch_optional(&self.pool)
        .await
        .map_err(ControlError::database("finding an external account"))?;
        row.as_ref().map(account_from_row).transpose()
    }
}

fn account_from_row(row: &AnyRow) -> Result<Account, ControlError> {
    let decode = || ControlError::database("decoding an account");
    let role: String = row.try_get(3).map_err(decode())?;
    Ok(Account {
        id: row.try_get(0).map_err(decode())?,
        email: row.try_get(1).map_err(decode())?,
        display_name: row.try_get(2).map_err(decode())?,
        role: Role::from_db(&role).ok_or_else(|| ControlError::Internal {
            operation: "decoding an account",
            reason: format!("stored role {role:?} is unknown"),
        })?,
        created_at_ms: row.try_get(4).map_err(decode())?,
    })
}
