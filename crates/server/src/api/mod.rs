//! The JSON API under `/api/v1`. Each feature module has its own routes; who may call what is
//! decided per handler from the [`Caller`] (admin token, an account's session or API token, an
//! external identity token, or nobody).

mod accounts;
mod caller;
mod channels;
mod commerce;
mod discover;
mod error;
mod ownership;
mod passes;
mod playback;
mod recordings;
mod streams;
mod tips;
mod wallet;

use axum::Router;
use axum::extract::DefaultBodyLimit;

pub use caller::Caller;
pub use error::ApiError;
pub use recordings::RecordingView;
pub use streams::{PublicStatus, StreamView};

use crate::app::AppState;

/// Largest JSON body the API reads.
pub const MAX_JSON_BYTES: usize = 16 * 1024;

pub fn router() -> Router<AppState> {
    Router::new()
        .merge(streams::routes())
        .merge(recordings::routes())
        .merge(channels::routes())
        .merge(discover::routes())
        .merge(accounts::routes())
        .merge(playback::routes())
        .merge(passes::routes())
        .merge(commerce::routes())
        .merge(tips::routes())
        .merge(wallet::routes())
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_JSON_BYTES))
}

pub(crate) async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
