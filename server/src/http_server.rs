//! The HTTP server's accept loop. axum's own `serve` sets no limits: an idle connection, or one
//! trickling its headers a byte at a time, stayed open for as long as the client liked. Here a
//! connection is accepted only while fewer than `WAG_MAX_CONNECTIONS` are open, and hyper closes
//! one whose request headers do not arrive within `WAG_HEADER_TIMEOUT_SECS` (the same timer
//! bounds how long a kept-alive connection waits for its next request). The whole-request
//! timeout, which also cuts off a slow body, is a layer of the router (`router::build`).
use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use axum::{extract::Request, Router};
use gateway::config::HttpLimits;
use hyper::body::Incoming;
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    server::graceful::GracefulShutdown,
    service::TowerToHyperService,
};
use tokio::{net::TcpListener, sync::Semaphore};
use tower::{Service, ServiceExt};

/// Serves `router` on `listener` until `shutdown` resolves; then lets open requests finish for
/// at most the request timeout.
pub async fn serve(listener: TcpListener, router: Router, limits: HttpLimits, shutdown: impl Future<Output = ()>) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut make_service = router.into_make_service_with_connect_info::<SocketAddr>();
    tokio::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: pass, and try again shortly.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = match make_service.call(remote).await {
            Ok(service) => service,
            Err(never) => match never {},
        };
        let service = TowerToHyperService::new(
            service.map_request(|request: Request<Incoming>| request.map(axum::body::Body::new)),
        );
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_timeout)
            .serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "a connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.request_timeout + Duration::from_secs(1), graceful.shutdown()).await.is_err() {
        tracing::warn!("requests still open at shutdown were cut off");
    }
}
