//! Recording operator and API actions in the audit log: who (from the caller's key), what,
//! to what, when, and from where (the peer address and the request's id).

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;

use super::request_id::RequestId;
use super::Caller;
use crate::app::AppState;
use crate::store::audit::NewAuditEntry;
use crate::store::InstanceId;

/// Where a request came from.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    pub remote_addr: Option<String>,
    pub request_id: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for Origin {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self {
            remote_addr: parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|peer| peer.0.ip().to_string()),
            request_id: parts.extensions.get::<RequestId>().map(|id| id.0.clone()),
        })
    }
}

/// Through which door an action came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Api,
    Dashboard,
}

/// The audit log's name for a caller.
pub fn actor(caller: &Caller, via: Via) -> String {
    let who = match caller {
        Caller::Admin => "admin".to_string(),
        Caller::Instance(instance) => format!("instance:{}", instance.name),
    };
    match via {
        Via::Api => who,
        Via::Dashboard => format!("{who} (dashboard)"),
    }
}

/// Records an action that was carried out. A failure to record is logged loudly (the action
/// itself stands: it was committed before).
pub async fn record(
    state: &AppState,
    actor: String,
    origin: &Origin,
    action: &'static str,
    instance: Option<InstanceId>,
    target: Option<String>,
) {
    let entry = NewAuditEntry {
        at: state.clock.now(),
        actor,
        instance_id: instance,
        action,
        target,
        remote_addr: origin.remote_addr.clone(),
        request_id: origin.request_id.clone(),
    };
    if let Err(error) = state.store.record_audit(entry).await {
        state.metrics.store_write_failed(error.kind());
        tracing::error!(error = %super::ErrorChain(&error), action, "could not record an action in the audit log");
    }
}
