//! TCP proxies between cluster nodes, so a test can cut the network: one listener per directed
//! link (node i calling node j), forwarding to j's real peer address. A link is healthy, or cut
//! in one of two ways ([`Fault`]): refused (connections closed at once, as a host that answers
//! with RST), or dropped (connections held open and silent, as a firewall that drops packets).
//! Healing closes whatever a cut held, so nodes reconnect through a healthy link.
//!
//! The proxies run on a tokio runtime of their own, on one thread this file owns: [`Proxies`]
//! stops it, and every connection with it, when dropped (bounded: the runtime's tasks are only
//! sockets and timers). Nothing here knows about warren: the harness decides which link is
//! which (harness.rs), a test which to cut (partition.rs).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::thread::JoinHandle;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};

/// How a cut link behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Open connections are closed, new ones are accepted and closed at once: the caller learns
    /// right away that the link is down.
    Refuse,
    /// Open connections stop carrying bytes, new ones are accepted and never served: the caller
    /// learns nothing, its requests time out (a silent partition).
    Drop,
}

/// A link's state: `None` healthy, `Some(fault)` cut.
type State = Option<Fault>;

/// Every link's proxy, on one runtime thread.
pub struct Proxies {
    handle: tokio::runtime::Handle,
    links: Mutex<BTreeMap<(u64, u64), watch::Sender<State>>>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Proxies {
    pub fn start() -> Proxies {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("the proxies' runtime");
        let handle = runtime.handle().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("cluster-proxies".into())
            .spawn(move || {
                runtime.block_on(async {
                    let _ = stopped.await;
                });
                // Dropping the runtime here (not in a test's async context) ends every task
                // and closes every socket they hold.
                drop(runtime);
            })
            .expect("spawn the proxies' thread");
        Proxies {
            handle,
            links: Mutex::new(BTreeMap::new()),
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Listens on `listen` (port 0: any) for the link `from` → `to` and forwards each
    /// connection to `target`. Returns the address the proxy listens on.
    pub fn add(&self, from: u64, to: u64, listen: SocketAddr, target: SocketAddr) -> SocketAddr {
        let listener = std::net::TcpListener::bind(listen)
            .unwrap_or_else(|e| panic!("proxy {from}->{to}: bind {listen}: {e}"));
        listener.set_nonblocking(true).expect("nonblocking");
        let address = listener.local_addr().expect("proxy address");
        let (state, watching) = watch::channel(None);
        let previous = self.links.lock().unwrap().insert((from, to), state);
        assert!(previous.is_none(), "link {from}->{to} has a proxy already");
        self.handle.spawn(async move {
            let listener = TcpListener::from_std(listener).expect("tokio listener");
            accept(listener, target, watching).await;
        });
        address
    }

    /// Cuts the link `from` → `to` (only that direction: connections node `from` opened).
    pub fn cut(&self, from: u64, to: u64, fault: Fault) {
        let links = self.links.lock().unwrap();
        let link = links
            .get(&(from, to))
            .unwrap_or_else(|| panic!("no proxy for the link {from}->{to}"));
        link.send_replace(Some(fault));
    }

    /// Heals every link.
    pub fn heal_all(&self) {
        for state in self.links.lock().unwrap().values() {
            state.send_replace(None);
        }
    }

    /// The links cut now, with how.
    pub fn cut_links(&self) -> Vec<((u64, u64), Fault)> {
        self.links
            .lock()
            .unwrap()
            .iter()
            .filter_map(|(link, state)| state.borrow().map(|fault| (*link, fault)))
            .collect()
    }
}

impl Drop for Proxies {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Accepts the link's connections: each healthy one forwarded, each one that comes while the
/// link is cut refused or held as the fault says.
async fn accept(listener: TcpListener, target: SocketAddr, state: watch::Receiver<State>) {
    loop {
        let Ok((inbound, _)) = listener.accept().await else {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            continue;
        };
        let current = *state.borrow();
        match current {
            None => {
                tokio::spawn(forward(inbound, target, state.clone()));
            }
            Some(Fault::Refuse) => drop(inbound),
            Some(Fault::Drop) => {
                tokio::spawn(hold(vec![inbound], state.clone()));
            }
        }
    }
}

/// Forwards one connection both ways until either side closes or the link is cut.
async fn forward(mut inbound: TcpStream, target: SocketAddr, mut state: watch::Receiver<State>) {
    let _ = inbound.set_nodelay(true);
    // Cut while connecting: as if the connection had come after the cut.
    let connected = tokio::select! {
        connected = TcpStream::connect(target) => Some(connected),
        _ = until_cut(&mut state) => None,
    };
    let mut outbound = match connected {
        Some(Ok(outbound)) => outbound,
        Some(Err(_)) => return,
        None => return after_cut(vec![inbound], state).await,
    };
    let _ = outbound.set_nodelay(true);
    let cut = tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => false,
        _ = until_cut(&mut state) => true,
    };
    if cut {
        after_cut(vec![inbound, outbound], state).await;
    }
}

/// Returns once the link is cut (at once if it is already).
async fn until_cut(state: &mut watch::Receiver<State>) {
    let _ = state.wait_for(Option::is_some).await;
}

/// What a cut does to the sockets of a connection it caught.
async fn after_cut(sockets: Vec<TcpStream>, state: watch::Receiver<State>) {
    if *state.borrow() == Some(Fault::Drop) {
        hold(sockets, state).await;
    }
    // Refused (or healed already): the sockets close here.
}

/// Keeps sockets open and silent while the link is dropping traffic; closes them once it is
/// healed (the nodes then reconnect) or refuses instead.
async fn hold(sockets: Vec<TcpStream>, mut state: watch::Receiver<State>) {
    let _ = state.wait_for(|s| *s != Some(Fault::Drop)).await;
    drop(sockets);
}
