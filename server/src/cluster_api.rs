//! The internal endpoint other nodes of a cluster call to reach the connections this node runs
//! (`gateway::cluster::forward`). Only mounted with `WAG_NODE_ADDRESS`. A call must be signed
//! with the key derived from the shared master key, fresh, and new; then it is done with this
//! node's registry, as if the request had reached this node.
use axum::{
    body::Bytes,
    extract::{DefaultBodyLimit, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::post,
    Json, Router,
};
use gateway::{
    cluster::forward::{Call, Failure, Op, Reply, SendRefusal, PATH, SIGNATURE_HEADER},
    connectors::registry::Handover,
    state::AppState,
};

/// A forwarded send carries its file as base64: the largest media cap and a third more.
const MAX_CALL_BYTES: usize = 160 * 1024 * 1024;

pub fn router() -> Router<AppState> {
    Router::new().route(PATH, post(take)).layer(DefaultBodyLimit::max(MAX_CALL_BYTES))
}

async fn take(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let registry = &state.registry;
    let Some(link) = registry.cluster() else { return StatusCode::NOT_FOUND.into_response() };
    let signature = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if !link.key.verify(signature, &body, gateway::time::now()) {
        tracing::warn!("a cluster call with a missing, wrong or stale signature was refused");
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let Ok(call) = serde_json::from_slice::<Call>(&body) else { return StatusCode::BAD_REQUEST.into_response() };
    if !link.taken.first(&call.id) {
        tracing::warn!(call = %call.id, "a cluster call was sent again and refused");
        return StatusCode::CONFLICT.into_response();
    }
    if !registry.owns(&call.instance_id) {
        return Json(Reply::NotOwner).into_response();
    }
    let instance = match gateway::instances::find_for_connector(&state.db, &call.instance_id).await {
        Ok(Some(instance)) => instance,
        Ok(None) => return Json(Reply::Failed { failure: Failure::NotFound }).into_response(),
        Err(e) => return Json(Reply::Failed { failure: e.into() }).into_response(),
    };
    let done = |result: gateway::Result<()>| match result {
        Ok(()) => Reply::Done,
        Err(e) => Reply::Failed { failure: e.into() },
    };
    let reply = match call.op {
        Op::Send { message } => {
            let limit = std::time::Duration::from_secs(state.config.send.timeout_secs);
            match registry.hand_over(&instance, message, limit).await {
                Handover::Sent(sent) => Reply::Sent { provider_message_id: sent.provider_message_id },
                Handover::Refused(e) => Reply::SendRefused { refusal: SendRefusal::from(e) },
                Handover::NoConnection(e) => Reply::Failed { failure: Failure::Refused(e) },
                Handover::Unknown(reason) => Reply::SendUnknown { reason },
            }
        }
        Op::LinkState => match registry.link_state(&instance).await {
            Ok(state) => Reply::LinkState { state },
            Err(e) => Reply::Failed { failure: e.into() },
        },
        Op::RequestPairCode { phone } => match registry.request_pair_code(&instance, &phone).await {
            Ok(code) => Reply::PairCode { code },
            Err(e) => Reply::Failed { failure: e.into() },
        },
        Op::Disconnect => done(registry.disconnect(&instance).await),
        Op::Reconnect => done(registry.reconnect(&instance).await),
        Op::Logout => done(registry.logout(&instance).await),
        Op::SimulateScan => done(registry.simulate_scan(&instance).await),
        Op::SandboxDeliver { kind } => done(registry.sandbox_deliver(&instance, kind).await),
    };
    Json(reply).into_response()
}
