//! The grants' queries: who may watch what. Access is one query over the account's grants
//! that are in force and cover the stream (by the pass's scope, or the token grant's stream).

use sqlx::any::AnyRow;
use sqlx::{Any, Executor, Row};

use super::Store;
use crate::grant::{CompTarget, Grant, GrantSource, replay_window_open};
use crate::pass::PassKind;
use crate::stream::generate_id;
use crate::{ControlError, Stream};

pub(super) const GRANT_COLUMNS: &str = "id, account_id, channel_id, pass_id, stream_id, source, \
     checkout_id, stripe_subscription_id, stripe_payment_intent_id, stripe_price_id, \
     starts_at_ms, expires_at_ms, revoked_at_ms, revoke_reason, stripe_state_ms, created_at_ms";

const G_GRANT_COLUMNS: &str = "g.id, g.account_id, g.channel_id, g.pass_id, g.stream_id, \
     g.source, g.checkout_id, g.stripe_subscription_id, g.stripe_payment_intent_id, \
     g.stripe_price_id, g.starts_at_ms, g.expires_at_ms, g.revoked_at_ms, g.revoke_reason, \
     g.stripe_state_ms, g.created_at_ms";

impl Store {
    /// Claims a free pass for an account: a grant with no end, made once per account —
    /// claiming again returns the same grant (even if it was revoked since). Answers
    /// [`ControlError::InvalidPass`] for a paid pass and [`ControlError::PassInactive`] for an
    /// archived one not claimed before.
    pub async fn claim_free_pass(
        &self,
        account_id: &str,
        pass_id: &str,
        now_ms: i64,
    ) -> Result<Grant, ControlError> {
        if let Some(grant) = self.free_grant(account_id, pass_id).await? {
            return Ok(grant);
        }
        let pass = self.get_pass(pass_id).await?;
        if pass.kind != PassKind::Free {
            return Err(ControlError::InvalidPass {
                reason: format!("pass {pass_id} is not free: buy it"),
            });
        }
        if !pass.active {
            return Err(ControlError::PassInactive {
                id: pass_id.to_owned(),
            });
        }
        self.get_account(account_id).await?;
        let grant = Grant {
            id: generate_id(),
            account_id: account_id.to_owned(),
            channel_id: pass.channel_id,
            pass_id: Some(pass.id),
            stream_id: None,
            source: GrantSource::Free,
            checkout_id: None,
            stripe_subscription_id: None,
            stripe_payment_intent_id: None,
            stripe_price_id: None,
            starts_at_ms: now_ms,
            expires_at_ms: None,
            revoked_at_ms: None,
            revoke_reason: None,
            stripe_state_ms: None,
            created_at_ms: now_ms,
        };
        // Two claims at once: the unique index keeps one, both answer it.
        if insert_grant(&self.pool, &grant).await? {
            tracing::info!(grant = %grant.id, pass = %pass_id, "free pass claimed");
        }
        self.free_grant(account_id, pass_id)
            .await?
            .ok_or_else(|| corrupt_row("claiming a free pass", &grant.id, "the grant vanished"))
    }

    /// Gives an account access for free (the channel's owner or an operator decides):
    /// to what a pass covers, or to one stream (which must belong to a channel), until
    /// `expires_at_ms` (`None` = no end).
    pub async fn comp_grant(
        &self,
        account_id: &str,
        target: CompTarget,
        expires_at_ms: Option<i64>,
        now_ms: i64,
    ) -> Result<Grant, ControlError> {
        self.get_account(account_id).await?;
        let (channel_id, pass_id, stream_id) = match target {
            CompTarget::Pass(pass_id) => {
                let pass = self.get_pass(&pass_id).await?;
                (pass.channel_id, Some(pass.id), None)
            }
            CompTarget::Stream(stream_id) => {
                let stream = self.get_stream(&stream_id).await?;
                let channel = stream.channel_id.ok_or_else(|| ControlError::Forbidden {
                    reason: format!("stream {stream_id} belongs to no channel"),
                })?;
                (channel, None, Some(stream.id))
            }
        };
        let grant = Grant {
            id: generate_id(),
            account_id: account_id.to_owned(),
            channel_id,
            pass_id,
            stream_id,
            source: GrantSource::Comp,
            checkout_id: None,
            stripe_subscription_id: None,
            stripe_payment_intent_id: None,
            stripe_price_id: None,
            starts_at_ms: now_ms,
            expires_at_ms,
            revoked_at_ms: None,
            revoke_reason: None,
            stripe_state_ms: None,
            created_at_ms: now_ms,
        };
        insert_grant(&self.pool, &grant).await?;
        tracing::info!(grant = %grant.id, account = %account_id, "comp grant given");
        Ok(grant)
    }

    /// The grant with this id (answers [`ControlError::PassNotFound`] naming the grant when
    /// there is none).
    pub async fn get_grant(&self, id: &str) -> Result<Grant, ControlError> {
        let row = sqlx::query(&format!("SELECT {GRANT_COLUMNS} FROM grants WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(ControlError::database("reading a grant"))?
            .ok_or_else(|| ControlError::PassNotFound {
                id: format!("grant {id}"),
            })?;
        grant_from_row(&row)
    }

    /// Every grant of an account, revoked and expired ones too, newest first.
    pub async fn grants_for_account(&self, account_id: &str) -> Result<Vec<Grant>, ControlError> {
        let rows = sqlx::query(&format!(
            "SELECT {GRANT_COLUMNS} FROM grants WHERE account_id = $1 \
             ORDER BY created_at_ms DESC, id DESC"
        ))
        .bind(account_id)
        .fetch_all(&self.pool)
        .await
        .map_err(ControlError::database("listing an account's grants"))?;
        rows.iter().map(grant_from_row).collect()
    }

    /// The grant that lets `account_id` watch `stream` at `now_ms` (live, or its replays with
    /// `replay`): in force (not revoked, started, not expired) and covering the stream — a
    /// `channel` pass of the stream's channel, a `streams` pass listing it, or tokens spent on
    /// it. The one lasting longest is returned. Answers [`ControlError::AccessRequired`] when
    /// there is none, and for replays [`ControlError::ReplayAccessExpired`] when the stream
    /// ended more than its `replay_access_days` ago. Whether the stream needs a grant at all
    /// (free streams, the owner, an operator) is the caller's to decide.
    pub async fn access_to_stream(
        &self,
        account_id: &str,
        stream: &Stream,
        now_ms: i64,
        replay: bool,
    ) -> Result<Grant, ControlError> {
        let row = sqlx::query(&format!(
            "SELECT {G_GRANT_COLUMNS} FROM grants g LEFT JOIN passes p ON p.id = g.pass_id \
             WHERE g.account_id = $1 AND g.revoked_at_ms IS NULL AND g.starts_at_ms <= $2 \
             AND (g.expires_at_ms IS NULL OR g.expires_at_ms > $2) \
             AND ((g.pass_id IS NULL AND g.stream_id = $3) \
                  OR (p.scope = 'channel' AND g.channel_id = $4) \
                  OR (p.scope = 'streams' AND EXISTS (SELECT 1 FROM pass_streams ps \
                      WHERE ps.pass_id = g.pass_id AND ps.stream_id = $3))) \
             ORDER BY CASE WHEN g.expires_at_ms IS NULL THEN 1 ELSE 0 END DESC, \
                      g.expires_at_ms DESC, g.id \
             LIMIT 1"
        ))
        .bind(account_id)
        .bind(now_ms)
        .bind(&stream.id)
        .bind(stream.channel_id.as_deref())
        .fetch_optional(&self.pool)
        .await
        .map_err(ControlError::database("checking access to a stream"))?;
        let grant = row
            .as_ref()
            .map(grant_from_row)
            .transpose()?
            .ok_or_else(|| ControlError::AccessRequired {
                id: stream.id.clone(),
            })?;
        if replay && !replay_window_open(stream.ended_at_ms, stream.replay_access_days, now_ms) {
            return Err(ControlError::ReplayAccessExpired {
                id: stream.id.clone(),
            });
        }
        Ok(grant)
    }

    /// Revokes a grant at `now_ms` (a ban, a dispute). Revoking a revoked grant changes
    /// nothing and returns it as it is.
    pub async fn revoke_grant(
        &self,
        id: &str,
        reason: &str,
        now_ms: i64,
    ) -> Result<Grant, ControlError> {
        sqlx::query(
            "UPDATE grants SET revoked_at_ms = $1, revoke_reason = $2 \
             WHERE id = $3 AND revoked_at_ms IS NULL",
        )
        .bind(now_ms)
        .bind(reason)
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(ControlError::database("revoking a grant"))?;
        let grant = self.get_grant(id).await?;
        tracing::info!(grant = %id, reason, "grant revoked");
        Ok(grant)
    }

    /// A grant of `pass_id` the account holds in force at `now_ms`, if any.
    pub(crate) async fn active_pass_grant(
        &self,
        account_id: &str,
        pass_id: &str,
        now_ms: i64,
    ) -> Result<Option<Grant>, ControlError> {
        let row = sqlx::query(&format!(
            "SELECT {GRANT_COLUMNS} FROM grants WHERE account_id = $1 AND pass_id = $2 \
             AND revoked_at_ms IS NULL AND starts_at_ms <= $3 \
             AND (expires_at_ms IS NULL OR expires_at_ms > $3) LIMIT 1"
        ))
        .bind(account_id)
        .bind(pass_id)
        .bind(now_ms)
        .fetch_optional(&self.pool)
        .await
        .map_err(ControlError::database("finding an account's pass grant"))?;
        row.as_ref().map(grant_from_row).transpose()
    }

    async fn free_grant(
        &self,
        account_id: &str,
        pass_id: &str,
    ) -> Result<Option<Grant>, ControlError> {
        self.grant_of_source(account_id, "pass_id", pass_id, GrantSource::Free)
            .await
    }

    /// The grant of `source` an account holds for one pass or stream (`column` is `pass_id`
    /// or `stream_id`): free and token grants are made once per account and target.
    pub(super) async fn grant_of_source(
        &self,
        account_id: &str,
        column: &'static str,
        target: &str,
        source: GrantSource,
    ) -> Result<Option<Grant>, ControlError> {
        let row = sqlx::query(&format!(
            "SELECT {GRANT_COLUMNS} FROM grants \
             WHERE account_id = $1 AND {column} = $2 AND source = $3"
        ))
        .bind(account_id)
        .bind(target)
        .bind(source.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(ControlError::database("finding a grant"))?;
        row.as_ref().map(grant_from_row).transpose()
    }

    /// The grant a checkout bought, if any (for a buyer waiting on the webhook).
    pub async fn grant_for_checkout(
        &self,
        checkout_id: &str,
    ) -> Result<Option<Grant>, ControlError> {
        let row = sqlx::query(&format!(
            "SELECT {GRANT_COLUMNS} FROM grants WHERE checkout_id = $1"
        ))
        .bind(checkout_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(ControlError::database("finding a checkout's grant"))?;
        row.as_ref().map(grant_from_row).transpose()
    }

    /// The grant of a Stripe subscription, if any.
    pub(crate) async fn grant_for_subscription(
        &self,
        subscription_id: &str,
    ) -> Result<Option<Grant>, ControlError> {
        let row = sqlx::query(&format!(
            "SELECT {GRANT_COLUMNS} FROM grants WHERE stripe_subscription_id = $1"
        ))
        .bind(subscription_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(ControlError::database("finding a subscription's grant"))?;
        row.as_ref().map(grant_from_row).transpose()
    }
}

/// Inserts a grant unless a unique index already holds its twin (one free claim per account
/// and pass, one token grant per account and stream, one grant per checkout and per
/// subscription). Whether it was inserted.
pub(super) async fn insert_grant<'c, E>(executor: E, grant: &Grant) -> Result<bool, ControlError>
where
    E: Executor<'c, Database = Any>,
{
    let inserted = sqlx::query(&format!(
        "INSERT INTO grants ({GRANT_COLUMNS}) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) \
         ON CONFLICT DO NOTHING"
    ))
    .bind(&grant.id)
    .bind(&grant.account_id)
    .bind(&grant.channel_id)
    .bind(grant.pass_id.as_deref())
    .bind(grant.stream_id.as_deref())
    .bind(grant.source.as_str())
    .bind(grant.checkout_id.as_deref())
    .bind(grant.stripe_subscription_id.as_deref())
    .bind(grant.stripe_payment_intent_id.as_deref())
    .bind(grant.stripe_price_id.as_deref())
    .bind(grant.starts_at_ms)
    .bind(grant.expires_at_ms)
    .bind(grant.revoked_at_ms)
    .bind(grant.revoke_reason.as_deref())
    .bind(grant.stripe_state_ms)
    .bind(grant.created_at_ms)
    .execute(executor)
    .await
    .map_err(ControlError::database("recording a grant"))?;
    Ok(inserted.rows_affected() > 0)
}

pub(super) fn grant_from_row(row: &AnyRow) -> Result<Grant, ControlError> {
    let decode = || ControlError::database("decoding a grant");
    let id: String = row.try_get(0).map_err(decode())?;
    let source: String = row.try_get(5).map_err(decode())?;
    Ok(Grant {
        source: GrantSource::parse(&source)
            .ok_or_else(|| corrupt_row("decoding a grant", &id, &format!("source {source:?}")))?,
        account_id: row.try_get(1).map_err(decode())?,
        channel_id: row.try_get(2).map_err(decode())?,
        pass_id: row.try_get(3).map_err(decode())?,
        stream_id: row.try_get(4).map_err(decode())?,
        checkout_id: row.try_get(6).map_err(decode())?,
        stripe_subscription_id: row.try_get(7).map_err(decode())?,
        stripe_payment_intent_id: row.try_get(8).map_err(decode())?,
        stripe_price_id: row.try_get(9).map_err(decode())?,
        starts_at_ms: row.try_get(10).map_err(decode())?,
        expires_at_ms: row.try_get(11).map_err(decode())?,
        revoked_at_ms: row.try_get(12).map_err(decode())?,
        revoke_reason: row.try_get(13).map_err(decode())?,
        stripe_state_ms: row.try_get(14).map_err(decode())?,
        created_at_ms: row.try_get(15).map_err(decode())?,
        id,
    })
}

/// A stored row this version cannot read: a decode error naming the row.
pub(super) fn corrupt_row(operation: &'static str, id: &str, reason: &str) -> ControlError {
    ControlError::Database {
        operation,
        source: sqlx::Error::Decode(format!("row {id} is corrupt: {reason}").into()),
    }
}
