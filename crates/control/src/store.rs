//! The streams store: a sqlx `Any` pool over SQLite or Postgres. The recordings' queries are
//! in [`recordings`], the channels' (and the channel and discovery listings of streams) in
//! [`channels`].

mod accounts;
mod channels;
mod checkouts;
mod grants;
mod ledger;
mod passes;
mod recordings;
mod stripe_events;
mod tips;
mod wallet;

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, Row};

use crate::stream::{
    StreamKey, StreamSettingsUpdate, check_access, generate_id, is_stream_id, validate_description,
    validate_price_tokens, validate_recording_retention_days, validate_replay_access_days,
    validate_schedule, validate_title,
};
use crate::{
    ControlError, NewStream, SourceTransport, Stream, StreamAccess, StreamSource, StreamStatus,
};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("../../migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("../../migrations/postgres");

const COLUMNS: &str = "id, title, stream_key, status, created_at_ms, ended_at_ms, source_url, \
     source_transport, simulcast_ladder, record, recording_retention_days, channel_id, \
     description, scheduled_at_ms, started_at_ms, cancelled_at_ms, access, price_tokens, \
     replay_access_days";

/// Which database the store talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The backend a database URL names.
    pub fn from_url(url: &str) -> Result<Backend, ControlError> {
        let scheme = url.split_once(':').map(|(scheme, _)| scheme).unwrap_or("");
        match scheme.to_ascii_lowercase().as_str() {
            "sqlite" => Ok(Backend::Sqlite),
            "postgres" | "postgresql" => Ok(Backend::Postgres),
            _ => Err(ControlError::UnsupportedDatabase {
                url: redact_url(url),
            }),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// Handle to the streams database; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

impl Store {
    /// The default database: `greenroom.db` in `data_dir`, created when missing.
    pub fn sqlite_url(data_dir: &Path) -> String {
        format!("sqlite://{}/greenroom.db?mode=rwc", data_dir.display())
    }

    /// Connects to `url` (`sqlite://...` or `postgres://...`) and runs the embedded migrations.
    /// A SQLite database is switched to the WAL journal.
    pub async fn connect(url: &str) -> Result<Store, ControlError> {
        let backend = Backend::from_url(url)?;
        sqlx::any::install_default_drivers();
        let max_connections = match backend {
            Backend::Sqlite => 4,
            Backend::Postgres => 10,
        };
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            .connect(url)
            .await
            .map_err(ControlError::database("connecting to the database"))?;
        if backend == Backend::Sqlite {
            sqlx::query("PRAGMA journal_mode = WAL")
                .execute(&pool)
                .await
                .map_err(ControlError::database("switching SQLite to WAL"))?;
        }
        let migrator = match backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator
            .run(&pool)
            .await
            .map_err(|source| ControlError::Migrate {
                backend: backend.name(),
                source,
            })?;
        tracing::debug!(backend = backend.name(), "database ready");
        Ok(Store { pool, backend })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), ControlError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(ControlError::database("pinging the database"))?;
        Ok(())
    }

    /// Closes every connection; later calls fail.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Creates a stream with a fresh id and key. The title is validated and trimmed.
    pub async fn create_stream(&self, title: &str) -> Result<Stream, ControlError> {
        self.create_stream_with_source(title, None).await
    }

    /// Creates a stream that pulls its media from `source` (checked with
    /// [`StreamSource::new`]), or a plain one with `None`.
    pub async fn create_stream_with_source(
        &self,
        title: &str,
        source: Option<StreamSource>,
    ) -> Result<Stream, ControlError> {
        self.create_stream_with(title, source, false).await
    }

    /// Creates a stream with an optional RTSP source and, for RTMP/RTSP sources, the choice of
    /// a three-layer simulcast ladder. It records its sessions with the default retention.
    pub async fn create_stream_with(
        &self,
        title: &str,
        source: Option<StreamSource>,
        simulcast_ladder: bool,
    ) -> Result<Stream, ControlError> {
        self.create_stream_from(NewStream {
            title: title.to_owned(),
            source,
            simulcast_ladder,
            ..NewStream::default()
        })
        .await
    }

    /// Creates a stream with a fresh id and key. The title is validated and trimmed, the
    /// recording retention checked with [`validate_recording_retention_days`], the public
    /// settings with [`validate_description`], [`validate_schedule`] (against the clock),
    /// [`validate_replay_access_days`] and the access rule (only a paid stream has a token
    /// price). The channel must exist.
    pub async fn create_stream_from(&self, new: NewStream) -> Result<Stream, ControlError> {
        let title = validate_title(&new.title)?;
        if let Some(days) = new.recording_retention_days {
            validate_recording_retention_days(days)?;
        }
        let description = validate_description(&new.description)?;
        let now = now_ms();
        if let Some(at_ms) = new.scheduled_at_ms {
            validate_schedule(at_ms, now)?;
        }
        if let Some(days) = new.replay_access_days {
            validate_replay_access_days(days)?;
        }
        check_access(new.access, new.price_tokens)?;
        if let Some(channel_id) = &new.channel_id {
            self.get_channel(channel_id).await?;
        }
        let stream = Stream {
            id: generate_id(),
            title,
            stream_key: StreamKey::generate(),
            status: StreamStatus::Created,
            created_at_ms: now,
            ended_at_ms: None,
            source: new.source,
            simulcast_ladder: new.simulcast_ladder,
            record: new.record,
            recording_retention_days: new.recording_retention_days,
            channel_id: new.channel_id,
            description,
            scheduled_at_ms: new.scheduled_at_ms,
            started_at_ms: None,
            cancelled_at_ms: None,
            access: new.access,
            price_tokens: new.price_tokens,
            replay_access_days: new.replay_access_days,
        };
        sqlx::query(
            "INSERT INTO streams \
             (id, title, stream_key, status, created_at_ms, source_url, source_transport, \
              simulcast_ladder, record, recording_retention_days, channel_id, description, \
              scheduled_at_ms, access, price_tokens, replay_access_days) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
        )
        .bind(&stream.id)
        .bind(&stream.title)
        .bind(stream.stream_key.expose())
        .bind(stream.status.as_db())
        .bind(stream.created_at_ms)
        .bind(stream.source.as_ref().map(|source| source.url.clone()))
        .bind(
            stream
                .source
                .as_ref()
                .map(|source| source.transport.as_str()),
        )
        .bind(i64::from(stream.simulcast_ladder))
        .bind(i64::from(stream.record))
        .bind(stream.recording_retention_days.map(i64::from))
        .bind(stream.channel_id.as_deref())
        .bind(&stream.description)
        .bind(stream.scheduled_at_ms)
        .bind(stream.access.as_str())
        .bind(stream.price_tokens)
        .bind(stream.replay_access_days.map(i64::from))
        .execute(&self.pool)
        .await
        .map_err(ControlError::database("creating a stream"))?;
        tracing::info!(
            stream = %stream.id,
            channel = ?stream.channel_id,
            access = stream.access.as_str(),
            "stream created"
        );
        Ok(stream)
    }

    /// The stream with this id.
    pub async fn get_stream(&self, id: &str) -> Result<Stream, ControlError> {
        self.find_stream(id)
            .await?
            .ok_or_else(|| ControlError::StreamNotFound { id: id.to_owned() })
    }

    /// Every stream, newest first.
    pub async fn list_streams(&self) -> Result<Vec<Stream>, ControlError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM streams ORDER BY created_at_ms DESC, id DESC"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(ControlError::database("listing streams"))?;
        rows.iter().map(stream_from_row).collect()
    }

    /// The streams that have not ended and have a source, oldest first (the pulls to start).
    pub async fn open_streams_with_sources(&self) -> Result<Vec<Stream>, ControlError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM streams WHERE status = $1 AND source_url IS NOT NULL \
             ORDER BY created_at_ms, id"
        ))
        .bind(StreamStatus::Created.as_db())
        .fetch_all(&self.pool)
        .await
        .map_err(ControlError::database("listing streams with sources"))?;
        rows.iter().map(stream_from_row).collect()
    }

    /// The newest stream that has not ended, if any.
    pub async fn latest_open_stream(&self) -> Result<Option<Stream>, ControlError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM streams WHERE status = $1 \
             ORDER BY created_at_ms DESC, id DESC LIMIT 1"
        ))
        .bind(StreamStatus::Created.as_db())
        .fetch_optional(&self.pool)
        .await
        .map_err(ControlError::database("finding the newest open stream"))?;
        row.as_ref().map(stream_from_row).transpose()
    }

    /// Ends a stream (idle, live, or scheduled and since started) with one conditional
    /// `UPDATE`. Ending an ended (or cancelled) stream changes nothing and returns it as it is;
    /// a scheduled stream that never went live must be cancelled instead
    /// ([`ControlError::InvalidTransition`]).
    pub async fn end_stream(&self, id: &str) -> Result<Stream, ControlError> {
        if !is_stream_id(id) {
            return Err(ControlError::StreamNotFound { id: id.to_owned() });
        }
        let updated = sqlx::query(
            "UPDATE streams SET status = $1, ended_at_ms = $2 \
             WHERE id = $3 AND status = $4 \
             AND (scheduled_at_ms IS NULL OR started_at_ms IS NOT NULL)",
        )
        .bind(StreamStatus::Ended.as_db())
        .bind(now_ms())
        .bind(id)
        .bind(StreamStatus::Created.as_db())
        .execute(&self.pool)
        .await
        .map_err(ControlError::database("ending a stream"))?;
        let stream = self.get_stream(id).await?;
        if updated.rows_affected() == 0 && !stream.is_ended() {
            return Err(refused(&stream, "end"));
        }
        if updated.rows_affected() > 0 {
            tracing::info!(stream = %stream.id, "stream ended");
        }
        Ok(stream)
    }

    /// Schedules (or reschedules) a stream to start at `at_ms`: allowed while it is created
    /// and has never gone live (an idle never-started stream becomes scheduled). `at_ms` must
    /// be after `now_ms` and at most [`MAX_SCHEDULE_AHEAD_MS`](crate::MAX_SCHEDULE_AHEAD_MS)
    /// later. One conditional `UPDATE`; otherwise [`ControlError::InvalidTransition`].
    pub async fn schedule_stream(
        &self,
        id: &str,
        at_ms: i64,
        now_ms: i64,
    ) -> Result<Stream, ControlError> {
        validate_schedule(at_ms, now_ms)?;
        if !is_stream_id(id) {
            return Err(ControlError::StreamNotFound { id: id.to_owned() });
        }
        let updated = sqlx::query(
            "UPDATE streams SET scheduled_at_ms = $1 \
             WHERE id = $2 AND status = $3 AND started_at_ms IS NULL",
        )
        .bind(at_ms)
        .bind(id)
        .bind(StreamStatus::Created.as_db())
        .execute(&self.pool)
        .await
        .map_err(ControlError::database("scheduling a stream"))?;
        let stream = self.get_stream(id).await?;
        if updated.rows_affected() == 0 {
            return Err(refused(&stream, "schedule"));
        }
        tracing::info!(stream = %stream.id, scheduled_at_ms = at_ms, "stream scheduled");
        Ok(stream)
    }

    /// Cancels a scheduled stream that never went live: it ends, with `cancelled_at_ms` set.
    /// One conditional `UPDATE`, so of a cancel and a first publish racing exactly one wins;
    /// the other gets [`ControlError::InvalidTransition`]. Cancelling a cancelled stream
    /// changes nothing and returns it as it is.
    pub async fn cancel_stream(&self, id: &str, now_ms: i64) -> Result<Stream, ControlError> {
        if !is_stream_id(id) {
            return Err(ControlError::StreamNotFound { id: id.to_owned() });
        }
        let updated = sqlx::query(
            "UPDATE streams SET status = $1, ended_at_ms = $2, cancelled_at_ms = $2 \
             WHERE id = $3 AND status = $4 \
             AND scheduled_at_ms IS NOT NULL AND started_at_ms IS NULL",
        )
        .bind(StreamStatus::Ended.as_db())
        .bind(now_ms)
        .bind(id)
        .bind(StreamStatus::Created.as_db())
        .execute(&self.pool)
        .await
        .map_err(ControlError::database("cancelling a stream"))?;
        let stream = self.get_stream(id).await?;
        if updated.rows_affected() == 0 {
            if stream.cancelled_at_ms.is_some() {
                return Ok(stream);
            }
            return Err(refused(&stream, "cancel"));
        }
        tracing::info!(stream = %stream.id, "stream cancelled");
        Ok(stream)
    }

    /// Records that a publisher went live on the stream: the first call sets
    /// `started_at_ms`, later ones change nothing (idempotent). Refused with
    /// [`ControlError::InvalidTransition`] for an ended or cancelled stream. One conditional
    /// `UPDATE`.
    pub async fn mark_stream_started(&self, id: &str, now_ms: i64) -> Result<Stream, ControlError> {
        if !is_stream_id(id) {
            return Err(ControlError::StreamNotFound { id: id.to_owned() });
        }
        let updated = sqlx::query(
            "UPDATE streams SET started_at_ms = $1 \
             WHERE id = $2 AND status = $3 AND started_at_ms IS NULL",
        )
        .bind(now_ms)
        .bind(id)
        .bind(StreamStatus::Created.as_db())
        .execute(&self.pool)
        .await
        .map_err(ControlError::database("marking a stream started"))?;
        let stream = self.get_stream(id).await?;
        if updated.rows_affected() == 0 && stream.is_ended() {
            return Err(refused(&stream, "publish"));
        }
        if updated.rows_affected() > 0 {
            tracing::info!(stream = %stream.id, "stream went live for the first time");
        }
        Ok(stream)
    }

    /// Changes a stream's public settings (see [`StreamSettingsUpdate`]) in one `UPDATE`
    /// whose condition keeps the access rule true against concurrent changes: a token price
    /// is only set on a paid stream. Ended streams may be changed too (replay access matters
    /// after the end).
    pub async fn update_stream_settings(
        &self,
        id: &str,
        update: StreamSettingsUpdate,
    ) -> Result<Stream, ControlError> {
        let description = update
            .description
            .as_deref()
            .map(validate_description)
            .transpose()?;
        if let Some(Some(days)) = update.replay_access_days {
            validate_replay_access_days(days)?;
        }
        let mut price = update.price_tokens;
        if let Some(Some(tokens)) = price {
            validate_price_tokens(tokens)?;
        }
        match (update.access, price) {
            (Some(StreamAccess::Free), Some(Some(_))) => {
                return Err(ControlError::InvalidStreamSetting {
                    reason: "only a paid stream has a token price".to_owned(),
                });
            }
            (Some(StreamAccess::Free), _) => price = Some(None),
            _ => {}
        }
        if !is_stream_id(id) {
            return Err(ControlError::StreamNotFound { id: id.to_owned() });
        }
        let columns: Vec<&str> = [
            description.is_some().then_some("description"),
            update.access.is_some().then_some("access"),
            price.is_some().then_some("price_tokens"),
            update
                .replay_access_days
                .is_some()
                .then_some("replay_access_days"),
        ]
        .into_iter()
        .flatten()
        .collect();
        if columns.is_empty() {
            return self.get_stream(id).await;
        }
        let conditions = if update.access.is_none() && matches!(price, Some(Some(_))) {
            " AND access = 'paid'"
        } else {
            ""
        };
        let assignments: Vec<String> = columns
            .iter()
            .enumerate()
            .map(|(i, column)| format!("{column} = ${}", i + 1))
            .collect();
        let sql = format!(
            "UPDATE streams SET {} WHERE id = ${}{conditions}",
            assignments.join(", "),
            columns.len() + 1,
        );
        let mut query = sqlx::query(&sql);
        if let Some(description) = description {
            query = query.bind(description);
        }
        if let Some(access) = update.access {
            query = query.bind(access.as_str());
        }
        if let Some(price) = price {
            query = query.bind(price);
        }
        if let Some(days) = update.replay_access_days {
            query = query.bind(days.map(i64::from));
        }
        let updated = query
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(ControlError::database("changing a stream's settings"))?;
        let stream = self.get_stream(id).await?;
        if updated.rows_affected() == 0 {
            return Err(ControlError::InvalidStreamSetting {
                reason: "only a paid stream has a token price".to_owned(),
            });
        }
        tracing::info!(
            stream = %stream.id,
            access = stream.access.as_str(),
            price_tokens = ?stream.price_tokens,
            replay_access_days = ?stream.replay_access_days,
            "stream settings changed"
        );
        Ok(stream)
    }

    /// Changes whether a stream records its sessions and how long its recordings are kept,
    /// with PATCH semantics: `None` leaves a setting as it is; `Some(None)` returns the
    /// retention to the server's default. Recordings already made keep their expiry. Ended
    /// streams may be changed too.
    pub async fn update_stream_recording(
        &self,
        id: &str,
        record: Option<bool>,
        retention_days: Option<Option<u32>>,
    ) -> Result<Stream, ControlError> {
        if let Some(Some(days)) = retention_days {
            validate_recording_retention_days(days)?;
        }
        if !is_stream_id(id) {
            return Err(ControlError::StreamNotFound { id: id.to_owned() });
        }
        let mut assignments = Vec::new();
        if record.is_some() {
            assignments.push(format!("record = ${}", assignments.len() + 1));
        }
        if retention_days.is_some() {
            assignments.push(format!(
                "recording_retention_days = ${}",
                assignments.len() + 1
            ));
        }
        if assignments.is_empty() {
            return self.get_stream(id).await;
        }
        let sql = format!(
            "UPDATE streams SET {} WHERE id = ${}",
            assignments.join(", "),
            assignments.len() + 1
        );
        let mut query = sqlx::query(&sql);
        if let Some(record) = record {
            query = query.bind(i64::from(record));
        }
        if let Some(days) = retention_days {
            query = query.bind(days.map(i64::from));
        }
        let updated = query
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(ControlError::database(
                "changing a stream's recording settings",
            ))?;
        if updated.rows_affected() == 0 {
            return Err(ControlError::StreamNotFound { id: id.to_owned() });
        }
        let stream = self.get_stream(id).await?;
        tracing::info!(
            stream = %stream.id,
            record = stream.record,
            retention_days = ?stream.recording_retention_days,
            "stream recording settings changed"
        );
        Ok(stream)
    }

    /// Finds a stream and checks the key its publisher presented. Answers, in this order:
    /// not found, invalid key (also when `key` is `None`), ended.
    pub async fn verify_stream_key(
        &self,
        id: &str,
        key: Option<&str>,
    ) -> Result<Stream, ControlError> {
        let stream = self.get_stream(id).await?;
        if !key.is_some_and(|key| stream.stream_key.matches(key)) {
            return Err(ControlError::InvalidStreamKey { id: id.to_owned() });
        }
        if stream.is_ended() {
            return Err(ControlError::StreamEnded { id: id.to_owned() });
        }
        Ok(stream)
    }

    /// Finds the stream a key belongs to (RTMP publishers present only the key). Answers, in
    /// this order: invalid key (no such key), ended.
    pub async fn stream_for_key(&self, key: &str) -> Result<Stream, ControlError> {
        let unknown = || ControlError::InvalidStreamKey {
            id: String::from("(by key)"),
        };
        if key.is_empty() || key.len() > 128 {
            return Err(unknown());
        }
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM streams WHERE stream_key = $1"
        ))
        .bind(key)
        .fetch_optional(&self.pool)
        .await
        .map_err(ControlError::database("finding a stream by key"))?;
        let stream = row
            .as_ref()
            .map(stream_from_row)
            .transpose()?
            .ok_or_else(unknown)?;
        if !stream.stream_key.matches(key) {
            return Err(unknown());
        }
        if stream.is_ended() {
            return Err(ControlError::StreamEnded { id: stream.id });
        }
        Ok(stream)
    }

    async fn find_stream(&self, id: &str) -> Result<Option<Stream>, ControlError> {
        if !is_stream_id(id) {
            return Ok(None);
        }
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM streams WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(ControlError::database("reading a stream"))?;
        row.as_ref().map(stream_from_row).transpose()
    }
}

fn stream_from_row(row: &AnyRow) -> Result<Stream, ControlError> {
    let decode = |source| ControlError::Database {
        operation: "decoding a stream row",
        source,
    };
    let id: String = row.try_get("id").map_err(decode)?;
    let status: String = row.try_get("status").map_err(decode)?;
    let status = StreamStatus::from_db(&status).ok_or_else(|| ControlError::Corrupt {
        id: id.clone(),
        reason: format!("unknown status {status:?}"),
    })?;
    let source_url: Option<String> = row.try_get("source_url").map_err(decode)?;
    let source_transport: Option<String> = row.try_get("source_transport").map_err(decode)?;
    let source = match (source_url, source_transport) {
        (None, None) => None,
        (Some(url), transport) => {
            let transport = match transport.as_deref() {
                None => SourceTransport::Tcp,
                Some(value) => {
                    SourceTransport::parse(value).ok_or_else(|| ControlError::Corrupt {
                        id: id.clone(),
                        reason: format!("unknown source transport {value:?}"),
                    })?
                }
            };
            Some(StreamSource { url, transport })
        }
        (None, Some(_)) => {
            return Err(ControlError::Corrupt {
                id,
                reason: "a source transport without a source URL".to_owned(),
            });
        }
    };
    let simulcast_ladder: i64 = row.try_get("simulcast_ladder").map_err(decode)?;
    let record: i64 = row.try_get("record").map_err(decode)?;
    let retention_days: Option<i64> = row.try_get("recording_retention_days").map_err(decode)?;
    let recording_retention_days = match retention_days {
        None => None,
        Some(days) => Some(
            u32::try_from(days)
                .ok()
                .and_then(|days| validate_recording_retention_days(days).ok())
                .ok_or_else(|| ControlError::Corrupt {
                    id: id.clone(),
                    reason: format!("recording retention of {days} days"),
                })?,
        ),
    };
    let access: String = row.try_get("access").map_err(decode)?;
    let access = StreamAccess::parse(&access).ok_or_else(|| ControlError::Corrupt {
        id: id.clone(),
        reason: format!("unknown access {access:?}"),
    })?;
    let replay_days: Option<i64> = row.try_get("replay_access_days").map_err(decode)?;
    let replay_access_days = match replay_days {
        None => None,
        Some(days) => Some(u32::try_from(days).map_err(|_| ControlError::Corrupt {
            id: id.clone(),
            reason: format!("replay access of {days} days"),
        })?),
    };
    Ok(Stream {
        channel_id: row.try_get("channel_id").map_err(decode)?,
        description: row.try_get("description").map_err(decode)?,
        scheduled_at_ms: row.try_get("scheduled_at_ms").map_err(decode)?,
        started_at_ms: row.try_get("started_at_ms").map_err(decode)?,
        cancelled_at_ms: row.try_get("cancelled_at_ms").map_err(decode)?,
        access,
        price_tokens: row.try_get("price_tokens").map_err(decode)?,
        replay_access_days,
        simulcast_ladder: simulcast_ladder != 0,
        record: record != 0,
        recording_retention_days,
        title: row.try_get("title").map_err(decode)?,
        stream_key: StreamKey::from_db(row.try_get("stream_key").map_err(decode)?),
        status,
        created_at_ms: row.try_get("created_at_ms").map_err(decode)?,
        ended_at_ms: row.try_get("ended_at_ms").map_err(decode)?,
        source,
        id,
    })
}

/// The refusal of `action` on `stream` in its current state.
fn refused(stream: &Stream, action: &'static str) -> ControlError {
    ControlError::InvalidTransition {
        id: stream.id.clone(),
        state: stream.state(false).as_str(),
        action,
    }
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The URL without its password, for error messages.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_follows_the_url_scheme() {
        assert_eq!(
            Backend::from_url("sqlite://x.db").ok(),
            Some(Backend::Sqlite)
        );
        assert_eq!(
            Backend::from_url("postgres://h/db").ok(),
            Some(Backend::Postgres)
        );
        assert_eq!(
            Backend::from_url("POSTGRESQL://h/db").ok(),
            Some(Backend::Postgres)
        );
        assert!(Backend::from_url("mysql://h/db").is_err());
        assert!(Backend::from_url("nonsense").is_err());
    }

    #[test]
    fn unsupported_url_errors_hide_the_password() {
        let err = Backend::from_url("mysql://user:secret@host/db").err();
        let text = err.map(|e| e.to_string()).unwrap_or_default();
        assert!(text.contains("user:***@host"), "{text}");
        assert!(!text.contains("secret"), "{text}");
    }
}
