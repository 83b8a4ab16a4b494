//! A TCP proxy between a client and the server that can lose traffic the way
//! a network does: `blackhole` drops everything the server sends, `cut_all`
//! closes every open connection. The server believes it delivered.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

pub struct Proxy {
    pub addr: SocketAddr,
    blackhole: Arc<AtomicBool>,
    cut: watch::Sender<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        // Aborting the accept loop drops its JoinSet, which aborts every
        // connection task and closes their sockets.
        self.task.abort();
    }
}

impl Proxy {
    pub async fn start(target: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let blackhole = Arc::new(AtomicBool::new(false));
        let (cut, _) = watch::channel(0u64);
        let task = tokio::spawn({
            let blackhole = blackhole.clone();
            let cut = cut.clone();
            async move {
                let mut conns = JoinSet::new();
                while let Ok((client, _)) = listener.accept().await {
                    let Ok(server) = TcpStream::connect(target).await else {
                        continue;
                    };
                    conns.spawn(pipe(client, server, blackhole.clone(), cut.subscribe()));
                    while conns.try_join_next().is_some() {}
                }
            }
        });
        Ok(Self {
            addr,
            blackhole,
            cut,
            task,
        })
    }

    pub fn set_blackhole(&self, on: bool) {
        self.blackhole.store(on, Ordering::SeqCst);
    }

    /// Closes every connection open now.
    pub fn cut_all(&self) {
        self.cut.send_modify(|n| *n += 1);
    }
}

async fn pipe(
    client: TcpStream,
    server: TcpStream,
    blackhole: Arc<AtomicBool>,
    mut cut: watch::Receiver<u64>,
) {
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let up = async {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match cr.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if sw.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            }
        }
    };
    let down = async {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match sr.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if blackhole.load(Ordering::SeqCst) {
                        continue;
                    }
                    if cw.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            }
        }
    };
    tokio::select! {
        () = up => {}
        () = down => {}
        _ = cut.changed() => {}
    }
}
