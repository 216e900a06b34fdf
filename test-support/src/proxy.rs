//! A TCP proxy a test can cut, to make a dependency unreachable in the middle of a run without
//! touching the shared server.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use tokio::{
    net::{TcpListener, TcpStream},
    sync::watch,
};

pub struct CuttableProxy {
    address: SocketAddr,
    cut: Arc<AtomicBool>,
    cut_signal: watch::Sender<bool>,
}

impl CuttableProxy {
    /// Forwards connections on a free local port to `target`.
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let cut = Arc::new(AtomicBool::new(false));
        let (cut_signal, _) = watch::channel(false);
        let accepting_cut = Arc::clone(&cut);
        let signal = cut_signal.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if accepting_cut.load(Ordering::SeqCst) {
                    continue; // dropped: the connection is refused in effect
                }
                let mut on_cut = signal.subscribe();
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(target).await else {
                        return;
                    };
                    let (mut client, mut server) = (client, server);
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = on_cut.wait_for(|cut| *cut) => {}
                    }
                });
            }
        });
        Self {
            address,
            cut,
            cut_signal,
        }
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Drops every open connection and every new one from now on.
    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        let _ = self.cut_signal.send(true);
    }
}
