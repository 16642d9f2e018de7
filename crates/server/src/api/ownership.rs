//! Who owns what: a stream or pass belongs to a channel, a channel to a creator account. The
//! admin owns everything.

use greenroom_control::{Channel, Stream};

use crate::api::{ApiError, Caller};
use crate::app::AppState;

/// The channel a stream belongs to, if any.
pub async fn stream_channel(
    state: &AppState,
    stream: &Stream,
) -> Result<Option<Channel>, ApiError> {
    match &stream.channel_id {
        Some(id) => Ok(Some(state.store.get_channel(id).await?)),
        None => Ok(None),
    }
}

/// Whether the caller is the admin or the creator owning `channel`.
pub fn owns_channel(caller: &Caller, channel: Option<&Channel>) -> bool {
    match caller {
        Caller::Admin => true,
        Caller::Account(account) => channel.is_some_and(|c| c.account_id == account.id),
        Caller::Anonymous => false,
    }
}

/// Whether the caller is the admin or the owner of the stream's channel.
pub async fn owns_stream(
    state: &AppState,
    caller: &Caller,
    stream: &Stream,
) -> Result<bool, ApiError> {
    if caller.is_admin() {
        return Ok(true);
    }
    if caller.account().is_none() {
        return Ok(false);
    }
    let channel = stream_channel(state, stream).await?;
    Ok(owns_channel(caller, channel.as_ref()))
}

/// 401 for nobody, 403 for anyone but the admin and the channel's owner.
pub fn require_channel_owner(caller: &Caller, channel: &Channel) -> Result<(), ApiError> {
    caller.require_any()?;
    if owns_channel(caller, Some(channel)) {
        Ok(())
    } else {
        Err(ApiError::Forbidden {
            reason: format!("only the owner of @{} can do this", channel.handle),
        })
    }
}
