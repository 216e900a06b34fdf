//! A TCP proxy a test controls, to make a dependency fail in the middle of a run without
//! touching the shared server: cut it (every connection dropped, new ones refused), sever it
//! (open connections dropped as a server restart would, new ones welcome), or hold it (new
//! connections wait, unanswered, until released).

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
};

use tokio::{
    net::{TcpListener, TcpStream},
    sync::watch,
};

pub struct CuttableProxy {
    address: SocketAddr,
    cut: Arc<AtomicBool>,
    /// Bumped to drop every open connection.
    generation: watch::Sender<u64>,
    /// While true, new connections wait before reaching the server.
    held: watch::Sender<bool>,
    accepted: Arc<AtomicU64>,
}

impl CuttableProxy {
    /// Forwards connections on a free local port to `target`.
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let cut = Arc::new(AtomicBool::new(false));
        let (generation, _) = watch::channel(0u64);
        let (held, _) = watch::channel(false);
        let accepted = Arc::new(AtomicU64::new(0));
        let accepting_cut = Arc::clone(&cut);
        let generations = generation.clone();
        let holds = held.clone();
        let counter = Arc::clone(&accepted);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if accepting_cut.load(Ordering::SeqCst) {
                    // Reset rather than closed, as a port nothing listens on answers.
                    let _ = client.set_zero_linger();
                    continue;
                }
                counter.fetch_add(1, Ordering::SeqCst);
                let mut on_sever = generations.subscribe();
                let born = *on_sever.borrow_and_update();
                let mut hold = holds.subscribe();
                tokio::spawn(async move {
                    if hold.wait_for(|held| !*held).await.is_err() {
                        return;
                    }
                    let Ok(server) = TcpStream::connect(target).await else {
                        return;
                    };
                    let (mut client, mut server) = (client, server);
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = on_sever.wait_for(|now| *now != born) => {}
                    }
                });
            }
        });
        Self {
            address,
            cut,
            generation,
            held,
            accepted,
        }
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Drops every open connection and every new one from now on.
    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        self.sever();
    }

    /// Lets new connections through again after [`Self::cut`].
    pub fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }

    /// Drops every open connection, as a restarting server would; new ones go through.
    pub fn sever(&self) {
        self.generation.send_modify(|generation| *generation += 1);
    }

    /// New connections are accepted but reach the server only after [`Self::release`].
    pub fn hold(&self) {
        self.held.send_replace(true);
    }

    pub fn release(&self) {
        self.held.send_replace(false);
    }

    /// Connections accepted so far (not counting those refused while cut).
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::SeqCst)
    }
}
