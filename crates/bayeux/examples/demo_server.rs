//! A runnable Bayeux server for trying the crate and for the Node tests.
//!
//! `cargo run -p bayeux --example demo_server -- [PORT]` (0 or nothing: any
//! free port). Prints the CometD URL (`http://127.0.0.1:PORT/cometd`) on its
//! first line. See `tests/support/demo.rs` for its authentication rules.
//! SIGTERM / Ctrl-C: held connects are answered with `reconnect: "none"`.

#[path = "../tests/support/demo.rs"]
mod demo;

use std::net::{Ipv4Addr, SocketAddr};

use bayeux::{Config, ShutdownMode};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = match std::env::args().nth(1) {
        Some(p) => p.parse().map_err(|e| format!("bad port {p:?}: {e}"))?,
        None => 0,
    };
    let server = demo::demo_server(Config::default());
    let (addr, task) = demo::spawn(
        server.clone(),
        SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
    )
    .await?;
    println!("http://{addr}{}", demo::BASE_PATH);

    let terminate = async {
        #[cfg(unix)]
        if let Ok(mut sig) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            sig.recv().await;
            return;
        }
        std::future::pending::<()>().await;
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
    server.shutdown(ShutdownMode::Close).await;
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), task).await;
    Ok(())
}
