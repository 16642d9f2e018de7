//! Channels, and the listings of streams by channel and for discovery.
//!
//! A channel's uniqueness rules (one per account, one per handle) are the table's unique
//! constraints; a create that loses a race to another is told which rule it broke by looking
//! at what won.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{COLUMNS, Store, now_ms, stream_from_row};
use crate::channel::{
    Channel, ChannelUpdate, normalize_handle, validate_bio, validate_display_name,
    validate_stripe_account_id,
};
use crate::stream::{generate_id, is_stream_id};
use crate::{ControlError, Role, Stream, StreamStatus};

const CHANNEL_COLUMNS: &str =
    "id, account_id, handle, display_name, bio, stripe_account_id, created_at_ms";

/// Most rows a discovery listing returns.
pub const MAX_LISTING: u32 = 100;

/// Scheduled streams stay "upcoming" this long after their announced start (a late start
/// is still worth showing).
pub const UPCOMING_GRACE_MS: i64 = 3_600_000;

fn clamp_limit(limit: u32) -> i64 {
    i64::from(limit.clamp(1, MAX_LISTING))
}

impl Store {
    /// Creates the channel of a creator account. The handle is normalized with
    /// [`normalize_handle`], the display name and bio checked. Answers
    /// [`ControlError::Forbidden`] for a viewer account, [`ControlError::ChannelExists`] when
    /// the account has one, [`ControlError::HandleTaken`] when another channel has the handle
    /// (also when two creates race: the unique constraints decide).
    pub async fn create_channel(
        &self,
        account_id: &str,
        handle: &str,
        display_name: &str,
        bio: &str,
    ) -> Result<Channel, ControlError> {
        let handle = normalize_handle(handle)?;
        let display_name = validate_display_name(display_name)?;
        let bio = validate_bio(bio)?;
        let account = self.get_account(account_id).await?;
        if account.role != Role::Creator {
            return Err(ControlError::Forbidden {
                reason: "only a creator account can have a channel".to_owned(),
            });
        }
        let channel = Channel {
            id: generate_id(),
            account_id: account.id,
            handle,
            display_name,
            bio,
            stripe_account_id: None,
            created_at_ms: now_ms(),
        };
        let inserted = sqlx::query(
            "INSERT INTO channels \
             (id, account_id, handle, display_name, bio, stripe_account_id, created_at_ms) \
             VALUES ($1, $2, $3, $4, $5, NULL, $6)",
        )
        .bind(&channel.id)
        .bind(&channel.account_id)
        .bind(&channel.handle)
        .bind(&channel.display_name)
        .bind(&channel.bio)
        .bind(channel.created_at_ms)
        .execute(&self.pool)
        .await;
        match inserted {
            Ok(_) => {}
            Err(sqlx::Error::Database(err)) if err.is_unique_violation() => {
                return Err(if self.channel_for_account(account_id).await?.is_some() {
                    ControlError::ChannelExists {
                        account: account_id.to_owned(),
                    }
                } else {
                    ControlError::HandleTaken {
                        handle: channel.handle,
                    }
                });
            }
            Err(err) => return Err(ControlError::database("creating a channel")(err)),
        }
        tracing::info!(channel = %channel.id, handle = %channel.handle, "channel created");
        Ok(channel)
    }

    /// The channel with this id.
    pub async fn get_channel(&self, id: &str) -> Result<Channel, ControlError> {
        let not_found = || ControlError::ChannelNotFound { id: id.to_owned() };
        if !is_stream_id(id) {
            return Err(not_found());
        }
        self.find_channel("id", id).await?.ok_or_else(not_found)
    }

    /// The channel with this handle (`@Name` and `name` both find `@name`).
    pub async fn get_channel_by_handle(&self, handle: &str) -> Result<Channel, ControlError> {
        let not_found = || ControlError::ChannelNotFound {
            id: format!("@{}", handle.trim().trim_start_matches('@')),
        };
        let Ok(handle) = normalize_handle(handle) else {
            return Err(not_found());
        };
        self.find_channel("handle", &handle)
            .await?
            .ok_or_else(not_found)
    }

    /// The channel the account owns, if any.
    pub async fn channel_for_account(
        &self,
        account_id: &str,
    ) -> Result<Option<Channel>, ControlError> {
        self.find_channel("account_id", account_id).await
    }

    /// The channels with these ids that exist, in no particular order (for showing the
    /// handles of a list of streams with one query).
    pub async fn channels_by_ids(&self, ids: &[String]) -> Result<Vec<Channel>, ControlError> {
        let ids: Vec<&String> = ids.iter().filter(|id| is_stream_id(id)).collect();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let placeholders: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT {CHANNEL_COLUMNS} FROM channels WHERE id IN ({})",
            placeholders.join(", ")
        );
        let mut query = sqlx::query(&sql);
        for id in ids {
            query = query.bind(id.as_str());
        }
        let rows = query
            .fetch_all(&self.pool)
            .await
            .map_err(ControlError::database("reading channels"))?;
        rows.iter().map(channel_from_row).collect()
    }

    /// Changes a channel's display name, bio or Stripe account (see [`ChannelUpdate`]); each
    /// value is checked first and nothing changes when one is invalid.
    pub async fn update_channel(
        &self,
        id: &str,
        update: ChannelUpdate,
    ) -> Result<Channel, ControlError> {
        let display_name = update
            .display_name
            .as_deref()
            .map(validate_display_name)
            .transpose()?;
        let bio = update.bio.as_deref().map(validate_bio).transpose()?;
        let stripe_account_id = match update.stripe_account_id {
            None => None,
            Some(None) => Some(None),
            Some(Some(account)) => Some(Some(validate_stripe_account_id(&account)?)),
        };
        let columns: Vec<&str> = [
            display_name.is_some().then_some("display_name"),
            bio.is_some().then_some("bio"),
            stripe_account_id.is_some().then_some("stripe_account_id"),
        ]
        .into_iter()
        .flatten()
        .collect();
        if columns.is_empty() {
            return self.get_channel(id).await;
        }
        if !is_stream_id(id) {
            return Err(ControlError::ChannelNotFound { id: id.to_owned() });
        }
        let assignments: Vec<String> = columns
            .iter()
            .enumerate()
            .map(|(i, column)| format!("{column} = ${}", i + 1))
            .collect();
        let sql = format!(
            "UPDATE channels SET {} WHERE id = ${}",
            assignments.join(", "),
            columns.len() + 1
        );
        let mut query = sqlx::query(&sql);
        if let Some(name) = display_name {
            query = query.bind(name);
        }
        if let Some(bio) = bio {
            query = query.bind(bio);
        }
        if let Some(account) = stripe_account_id {
            query = query.bind(account);
        }
        let updated = query
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(ControlError::database("changing a channel"))?;
        if updated.rows_affected() == 0 {
            return Err(ControlError::ChannelNotFound { id: id.to_owned() });
        }
        let channel = self.get_channel(id).await?;
        tracing::info!(
            channel = %channel.id,
            stripe_connected = channel.stripe_account_id.is_some(),
            "channel changed"
        );
        Ok(channel)
    }

    /// Every stream of a channel, newest first.
    pub async fn list_channel_streams(
        &self,
        channel_id: &str,
    ) -> Result<Vec<Stream>, ControlError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM streams WHERE channel_id = $1 \
             ORDER BY created_at_ms DESC, id DESC"
        ))
        .bind(channel_id)
        .fetch_all(&self.pool)
        .await
        .map_err(ControlError::database("listing a channel's streams"))?;
        rows.iter().map(stream_from_row).collect()
    }

    /// A channel's streams that have not ended (scheduled, idle or live), at most `limit`
    /// (1 to [`MAX_LISTING`]), those that went live most recently first, then the newest.
    pub async fn channel_open_streams(
        &self,
        channel_id: &str,
        limit: u32,
    ) -> Result<Vec<Stream>, ControlError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM streams WHERE channel_id = $1 AND status = $2 \
             ORDER BY (started_at_ms IS NULL), started_at_ms DESC, created_at_ms DESC, id DESC \
             LIMIT $3"
        ))
        .bind(channel_id)
        .bind(StreamStatus::Created.as_db())
        .bind(clamp_limit(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(ControlError::database("listing a channel's open streams"))?;
        rows.iter().map(stream_from_row).collect()
    }

    /// Channel streams scheduled and never started whose start is at most
    /// [`UPCOMING_GRACE_MS`] in the past, soonest first, at most `limit` (1 to
    /// [`MAX_LISTING`]).
    pub async fn upcoming_streams(
        &self,
        now_ms: i64,
        limit: u32,
    ) -> Result<Vec<Stream>, ControlError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM streams \
             WHERE status = $1 AND channel_id IS NOT NULL AND started_at_ms IS NULL \
             AND scheduled_at_ms IS NOT NULL AND scheduled_at_ms >= $2 \
             ORDER BY scheduled_at_ms, id LIMIT $3"
        ))
        .bind(StreamStatus::Created.as_db())
        .bind(now_ms.saturating_sub(UPCOMING_GRACE_MS))
        .bind(clamp_limit(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(ControlError::database("listing upcoming streams"))?;
        rows.iter().map(stream_from_row).collect()
    }

    /// The candidates for "live now" in discovery: channel streams that have not ended, at
    /// most `limit` (1 to [`MAX_LISTING`]), those that went live most recently first (then
    /// the newest). Whether one is live is the engine's answer.
    pub async fn open_channel_streams(&self, limit: u32) -> Result<Vec<Stream>, ControlError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM streams WHERE status = $1 AND channel_id IS NOT NULL \
             ORDER BY (started_at_ms IS NULL), started_at_ms DESC, created_at_ms DESC, id DESC \
             LIMIT $2"
        ))
        .bind(StreamStatus::Created.as_db())
        .bind(clamp_limit(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(ControlError::database("listing open channel streams"))?;
        rows.iter().map(stream_from_row).collect()
    }

    async fn find_channel(
        &self,
        column: &'static str,
        value: &str,
    ) -> Result<Option<Channel>, ControlError> {
        let row = sqlx::query(&format!(
            "SELECT {CHANNEL_COLUMNS} FROM channels WHERE {column} = $1"
        ))
        .bind(value)
        .fetch_optional(&self.pool)
        .await
        .map_err(ControlError::database("reading a channel"))?;
        row.as_ref().map(channel_from_row).transpose()
    }
}

fn channel_from_row(row: &AnyRow) -> Result<Channel, ControlError> {
    let decode = || ControlError::database("decoding a channel");
    Ok(Channel {
        id: row.try_get(0).map_err(decode())?,
        account_id: row.try_get(1).map_err(decode())?,
        handle: row.try_get(2).map_err(decode())?,
        display_name: row.try_get(3).map_err(decode())?,
        bio: row.try_get(4).map_err(decode())?,
        stripe_account_id: row.try_get(5).map_err(decode())?,
        created_at_ms: row.try_get(6).map_err(decode())?,
    })
}
