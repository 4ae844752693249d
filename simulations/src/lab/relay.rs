//! [`DelayRelay`]: a userspace UDP relay that holds every datagram for a fixed delay (this
//! kernel has no `netem`).

use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::error::{LabError, Result};

/// Datagrams in flight at most; more are dropped (and counted), like a full router queue.
pub const RELAY_QUEUE: usize = 4096;

/// The longest delay a relay accepts.
pub const MAX_RELAY_DELAY: Duration = Duration::from_secs(60);

/// How often the relay's threads check whether to stop.
const TICK: Duration = Duration::from_millis(20);

/// The largest UDP payload.
const MAX_DATAGRAM: usize = 65_536;

/// Counters shared with the relay's threads.
#[derive(Debug, Default)]
struct Counters {
    forwarded: AtomicU64,
    dropped: AtomicU64,
}

/// A UDP relay between one client and one server that delays every datagram by a fixed time.
///
/// It listens on `listen`; a datagram from anyone but `forward` is sent on to `forward` (and
/// its sender becomes "the client"); a datagram from `forward` is sent back to the client.
/// Both directions are delayed, so a round trip through the relay takes at least twice the
/// delay. Order is preserved. At most [`RELAY_QUEUE`] datagrams wait at a time; the rest are
/// dropped. One client at a time: this is a point-to-point link, not a NAT.
///
/// It runs on two threads of the calling process and stops when dropped. To be reachable by
/// lab hosts it must run *inside* a lab namespace, and a thread cannot enter a namespace
/// without `setns(2)` (unsafe code, which the workspace denies), so inside the lab it runs as
/// the subcommand `posmesh-lab relay` started with [`super::LabHost::spawn_relay`]. In a plain
/// process it relays on loopback, which is how its unit tests run.
#[derive(Debug)]
pub struct DelayRelay {
    local: SocketAddr,
    forward: SocketAddr,
    delay: Duration,
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
    threads: Vec<JoinHandle<()>>,
}

/// A datagram waiting for its time.
struct Pending {
    due: Instant,
    to: SocketAddr,
    data: Vec<u8>,
}

impl DelayRelay {
    /// Binds `listen` and starts relaying to and from `forward` with `delay` (at most
    /// [`MAX_RELAY_DELAY`]).
    pub fn start(listen: SocketAddr, forward: SocketAddr, delay: Duration) -> Result<DelayRelay> {
        if delay > MAX_RELAY_DELAY {
            return Err(LabError::InvalidArgument(format!(
                "a relay delay is at most {MAX_RELAY_DELAY:?}, not {delay:?}"
            )));
        }
        let socket = UdpSocket::bind(listen).map_err(LabError::io(format!("binding {listen}")))?;
        socket
            .set_read_timeout(Some(TICK))
            .map_err(LabError::io("setting the relay's read timeout"))?;
        let local = socket
            .local_addr()
            .map_err(LabError::io("reading the relay's address"))?;
        let sender = socket
            .try_clone()
            .map_err(LabError::io("cloning the relay's socket"))?;
        let stop = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(Counters::default());
        let (tx, rx) = mpsc::sync_channel::<Pending>(RELAY_QUEUE);
        let client: Arc<Mutex<Option<SocketAddr>>> = Arc::new(Mutex::new(None));

        let receive = {
            let stop = Arc::clone(&stop);
            let counters = Arc::clone(&counters);
            let client = Arc::clone(&client);
            thread::Builder::new()
                .name("delay-relay-rx".into())
                .spawn(move || {
                    let mut buf = vec![0u8; MAX_DATAGRAM];
                    while !stop.load(Ordering::Relaxed) {
                        let (len, from) = match socket.recv_from(&mut buf) {
                            Ok(got) => got,
                            // Timeouts (to check `stop`) and ICMP errors from earlier sends.
                            Err(_) => continue,
                        };
                        let to = {
                            let mut client = client.lock().unwrap_or_else(|p| p.into_inner());
                            if from == forward {
                                *client
                            } else {
                                *client = Some(from);
                                Some(forward)
                            }
                        };
                        let Some(to) = to else {
                            // An answer before any client spoke: nowhere to send it.
                            counters.dropped.fetch_add(1, Ordering::Relaxed);
                            continue;
                        };
                        let pending = Pending {
                            due: Instant::now() + delay,
                            to,
                            data: buf[..len].to_vec(),
                        };
                        match tx.try_send(pending) {
                            Ok(()) => {}
                            Err(TrySendError::Full(_)) => {
                                counters.dropped.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(TrySendError::Disconnected(_)) => break,
                        }
                    }
                })
                .map_err(LabError::io("starting the relay's receive thread"))?
        };
        let send = {
            let stop = Arc::clone(&stop);
            let counters = Arc::clone(&counters);
            thread::Builder::new()
                .name("delay-relay-tx".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let pending = match rx.recv_timeout(TICK) {
                            Ok(p) => p,
                            Err(RecvTimeoutError::Timeout) => continue,
                            Err(RecvTimeoutError::Disconnected) => break,
                        };
                        // A fixed delay keeps the queue in due order: wait for the head.
                        loop {
                            let now = Instant::now();
                            if now >= pending.due || stop.load(Ordering::Relaxed) {
                                break;
                            }
                            thread::sleep((pending.due - now).min(TICK));
                        }
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        match sender.send_to(&pending.data, pending.to) {
                            Ok(_) => counters.forwarded.fetch_add(1, Ordering::Relaxed),
                            Err(_) => counters.dropped.fetch_add(1, Ordering::Relaxed),
                        };
                    }
                })
                .map_err(LabError::io("starting the relay's send thread"))?
        };
        Ok(DelayRelay {
            local,
            forward,
            delay,
            stop,
            counters,
            threads: vec![receive, send],
        })
    }

    /// The address it listens on (useful after binding port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Where it forwards client datagrams.
    pub fn forward_addr(&self) -> SocketAddr {
        self.forward
    }

    /// The delay applied to each datagram.
    pub fn delay(&self) -> Duration {
        self.delay
    }

    /// Datagrams relayed so far.
    pub fn forwarded(&self) -> u64 {
        self.counters.forwarded.load(Ordering::Relaxed)
    }

    /// Datagrams dropped so far (queue full, no client yet, or a failed send).
    pub fn dropped(&self) -> u64 {
        self.counters.dropped.load(Ordering::Relaxed)
    }

    /// Stops relaying and joins its threads (within a few ticks); datagrams still waiting
    /// are discarded. Dropping the relay does the same.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

impl Drop for DelayRelay {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Finds the `posmesh-lab` binary, which runs relays inside lab hosts: `$POSMESH_LAB_BIN` if
/// set, else next to the running executable or one directory up (where cargo puts binaries
/// relative to test executables in `target/<profile>/deps`). Integration tests can pass
/// `env!("CARGO_BIN_EXE_posmesh-lab")` to [`super::LabHost::spawn_relay`] instead.
pub fn lab_binary() -> Result<PathBuf> {
    let mut looked_at = Vec::new();
    if let Some(path) = std::env::var_os("POSMESH_LAB_BIN") {
        let path = PathBuf::from(path);
        if path.is_file() {
            return Ok(path);
        }
        looked_at.push(path);
    }
    if let Ok(exe) = std::env::current_exe() {
        for dir in exe.ancestors().skip(1).take(2) {
            let path = dir.join("posmesh-lab");
            if path.is_file() {
                return Ok(path);
            }
            looked_at.push(path);
        }
    }
    Err(LabError::LabBinaryNotFound { looked_at })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loopback(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    /// A server on loopback that echoes `n` datagrams, on its own thread.
    fn echo_server(n: usize) -> (SocketAddr, JoinHandle<()>) {
        let socket = UdpSocket::bind(loopback(0)).expect("bind echo");
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let addr = socket.local_addr().expect("addr");
        let handle = thread::spawn(move || {
            let mut buf = [0u8; 1500];
            for _ in 0..n {
                let Ok((len, from)) = socket.recv_from(&mut buf) else {
                    return;
                };
                let _ = socket.send_to(&buf[..len], from);
            }
        });
        (addr, handle)
    }

    #[test]
    fn relays_both_ways_with_the_delay_and_in_order() {
        let (server, echo) = echo_server(5);
        let delay = Duration::from_millis(150);
        let relay = DelayRelay::start(loopback(0), server, delay).expect("start relay");
        let client = UdpSocket::bind(loopback(0)).expect("bind client");
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let started = Instant::now();
        for i in 0..5u8 {
            client.send_to(&[i], relay.local_addr()).expect("send");
        }
        let mut got = Vec::new();
        let mut buf = [0u8; 16];
        for _ in 0..5 {
            let (len, from) = client
                .recv_from(&mut buf)
                .expect("answer through the relay");
            assert_eq!(from, relay.local_addr());
            got.extend_from_slice(&buf[..len]);
        }
        let rtt = started.elapsed();
        assert_eq!(got, vec![0, 1, 2, 3, 4], "order preserved");
        assert!(
            rtt >= 2 * delay,
            "round trip {rtt:?} shorter than twice {delay:?}"
        );
        assert!(
            rtt < 2 * delay + Duration::from_secs(2),
            "round trip {rtt:?} far too long"
        );
        // The relay counts a datagram once its send returned, which may be just after the
        // client got it: wait (bounded) for the last count.
        let counted = Instant::now();
        while relay.forwarded() + relay.dropped() < 10 && counted.elapsed() < Duration::from_secs(2)
        {
            thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(relay.forwarded(), 10);
        assert_eq!(relay.dropped(), 0);
        echo.join().expect("echo thread");
        let stopping = Instant::now();
        relay.stop();
        assert!(
            stopping.elapsed() < Duration::from_secs(1),
            "stop is prompt"
        );
    }

    #[test]
    fn refuses_absurd_delays_and_stops_on_drop() {
        let too_long = MAX_RELAY_DELAY + Duration::from_secs(1);
        assert!(DelayRelay::start(loopback(0), loopback(9), too_long).is_err());
        let relay = DelayRelay::start(loopback(0), loopback(9), Duration::ZERO).expect("start");
        let addr = relay.local_addr();
        drop(relay);
        // The port is free again once the threads are gone.
        UdpSocket::bind(addr).expect("rebind after drop");
    }
}
