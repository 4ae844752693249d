//! Helpers: time bounds, lab construction with readable errors, and small python3 programs
//! (UDP echo, multicast, TCP bulk) run inside lab hosts.

use std::sync::mpsc;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::thread;
use std::time::Duration;

use posmesh_simulations::lab::{Lab, LabHost, LabProcess};

/// The longest any lab test may take.
pub const TEST_LIMIT: Duration = Duration::from_secs(30);

/// Lets the stale-cleanup test run alone: building a lab removes stale namespaces, which
/// would race with the stale namespace that test builds by hand.
static EXCLUSIVE: RwLock<()> = RwLock::new(());

/// Shared access (most tests).
pub fn shared() -> RwLockReadGuard<'static, ()> {
    EXCLUSIVE.read().unwrap_or_else(|p| p.into_inner())
}

/// Exclusive access (the stale-cleanup test).
pub fn exclusive() -> RwLockWriteGuard<'static, ()> {
    EXCLUSIVE.write().unwrap_or_else(|p| p.into_inner())
}

/// Runs `test` on its own thread and fails if it panics or takes longer than [`TEST_LIMIT`].
pub fn bounded<F: FnOnce() + Send + 'static>(name: &str, test: F) {
    let (done, finished) = mpsc::channel();
    let worker = thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            test();
            let _ = done.send(());
        })
        .expect("spawn the test thread");
    match finished.recv_timeout(TEST_LIMIT) {
        Ok(()) => worker.join().expect("test thread"),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            // The test panicked: re-raise its panic here.
            if let Err(panic) = worker.join() {
                std::panic::resume_unwind(panic);
            }
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("{name} took longer than {TEST_LIMIT:?}")
        }
    }
}

/// A lab of `hosts` hosts, or a panic with the lab's own message (e.g. that it needs root).
pub fn new_lab(hosts: usize) -> Lab {
    Lab::new(hosts).unwrap_or_else(|e| panic!("cannot build the lab: {e}"))
}

/// Names of all network namespaces now.
pub fn namespaces_now() -> Vec<String> {
    let out = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// UDP echo server: `ip port max_seconds`; prints `ready` once bound.
const ECHO_SERVER: &str = r#"
import socket, sys, time
ip, port, limit = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((ip, port))
s.settimeout(0.2)
print("ready", flush=True)
end = time.monotonic() + limit
while time.monotonic() < end:
    try:
        data, addr = s.recvfrom(2048)
    except socket.timeout:
        continue
    s.sendto(data, addr)
"#;

/// UDP echo client: `ip port tries wait_seconds`; prints `ok <rtt ms>` and exits 0 on the
/// first answer, exits 1 if no try is answered.
const ECHO_CLIENT: &str = r#"
import os, socket, sys, time
ip, port, tries, wait = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(wait)
base = os.urandom(6).hex()
for i in range(tries):
    token = ("%s-%d" % (base, i)).encode()
    start = time.monotonic()
    try:
        s.sendto(token, (ip, port))
        while time.monotonic() - start < wait:
            data, _ = s.recvfrom(2048)
            if data == token:
                print("ok %.1f" % ((time.monotonic() - start) * 1000))
                sys.exit(0)
    except socket.timeout:
        continue
    except OSError as e:
        print("try %d: %s" % (i, e))
        time.sleep(min(wait, 0.1))
print("no answer")
sys.exit(1)
"#;

/// Multicast receiver: `local_ip group port token seconds`; joins the group on the lab
/// interface, prints `ready`, then `got <token> from <ip>` and exits 0 (1 on timeout).
const MCAST_RECEIVER: &str = r#"
import socket, struct, sys, time
local, group, port, token, limit = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4].encode(), float(sys.argv[5])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("", port))
s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
             struct.pack("4s4s", socket.inet_aton(group), socket.inet_aton(local)))
s.settimeout(0.2)
print("ready", flush=True)
end = time.monotonic() + limit
while time.monotonic() < end:
    try:
        data, addr = s.recvfrom(2048)
    except socket.timeout:
        continue
    if data == token:
        print("got %s from %s" % (data.decode(), addr[0]), flush=True)
        sys.exit(0)
print("nothing", flush=True)
sys.exit(1)
"#;

/// Multicast sender: `local_ip group port token count`; sends `count` times, 100 ms apart.
const MCAST_SENDER: &str = r#"
import socket, sys, time
local, group, port, token, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4].encode(), int(sys.argv[5])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 255)
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(local))
for _ in range(count):
    s.sendto(token, (group, port))
    time.sleep(0.1)
print("sent", count)
"#;

/// TCP sink: `ip port seconds`; prints `ready`, accepts one connection, reads to EOF, answers
/// `done <bytes>`.
const TCP_SINK: &str = r#"
import socket, sys
ip, port, limit = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((ip, port)); s.listen(1); s.settimeout(limit)
print("ready", flush=True)
c, _ = s.accept(); c.settimeout(limit)
n = 0
while True:
    b = c.recv(65536)
    if not b:
        break
    n += len(b)
c.sendall(b"done %d" % n)
c.close()
"#;

/// TCP source: `ip port bytes seconds`; sends `bytes`, waits for the sink's answer, prints
/// `elapsed <ms>`.
const TCP_SOURCE: &str = r#"
import socket, sys, time
ip, port, size, limit = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
start = time.monotonic()
c = socket.create_connection((ip, port), timeout=limit)
c.sendall(b"x" * size)
c.shutdown(socket.SHUT_WR)
answer = c.recv(100).decode()
assert answer == "done %d" % size, answer
print("elapsed %.1f" % ((time.monotonic() - start) * 1000))
"#;

/// Starts a UDP echo server on `host`:`port` (for at most 25 s) and waits until it is bound.
pub fn echo_server(host: &LabHost, port: u16) -> LabProcess {
    let mut cmd = host.command("python3");
    cmd.args([
        "-c",
        ECHO_SERVER,
        &host.ip.to_string(),
        &port.to_string(),
        "25",
    ]);
    let server = host.spawn(cmd).expect("spawn echo server");
    server
        .wait_for_log("ready", Duration::from_secs(10))
        .expect("echo server ready");
    server
}

/// Sends to `ip:port` from `from` up to `tries` times, `wait` apart; `Some(rtt ms)` if
/// answered.
pub fn echo(from: &LabHost, to: std::net::SocketAddr, tries: u32, wait: f64) -> Option<f64> {
    let mut cmd = from.command("python3");
    cmd.args([
        "-c",
        ECHO_CLIENT,
        &to.ip().to_string(),
        &to.port().to_string(),
        &tries.to_string(),
        &wait.to_string(),
    ]);
    let limit = Duration::from_secs_f64(f64::from(tries) * wait + 10.0);
    let out = from.run(cmd, limit).expect("run echo client");
    // Lost packets are silent, as on a real network: the sender never sees EPERM.
    assert!(
        !out.stdout.contains("Operation not permitted"),
        "sendto failed with EPERM: {out:?}"
    );
    if out.status.success() {
        let rtt = out
            .stdout
            .trim()
            .strip_prefix("ok ")
            .and_then(|ms| ms.parse().ok())
            .unwrap_or_else(|| panic!("unexpected client output {:?}", out.stdout));
        Some(rtt)
    } else {
        assert_eq!(
            out.stdout.lines().last(),
            Some("no answer"),
            "client failed oddly: {out:?}"
        );
        None
    }
}

/// Starts a multicast receiver in `host` for `token` (at most 15 s) and waits until it joined.
pub fn multicast_receiver(host: &LabHost, group: &str, port: u16, token: &str) -> LabProcess {
    let mut cmd = host.command("python3");
    cmd.args([
        "-c",
        MCAST_RECEIVER,
        &host.ip.to_string(),
        group,
        &port.to_string(),
        token,
        "15",
    ]);
    let receiver = host.spawn(cmd).expect("spawn multicast receiver");
    receiver
        .wait_for_log("ready", Duration::from_secs(10))
        .expect("multicast receiver ready");
    receiver
}

/// Sends `token` to `group:port` from `host`, `count` times.
pub fn multicast_send(host: &LabHost, group: &str, port: u16, token: &str, count: u32) {
    let mut cmd = host.command("python3");
    cmd.args([
        "-c",
        MCAST_SENDER,
        &host.ip.to_string(),
        group,
        &port.to_string(),
        token,
        &count.to_string(),
    ]);
    let out = host
        .run(cmd, Duration::from_secs(10))
        .expect("run multicast sender");
    assert!(out.status.success(), "multicast sender failed: {out:?}");
}

/// Milliseconds to push `bytes` over TCP from `from` to a sink on `to`:`port`.
pub fn tcp_transfer_ms(from: &LabHost, to: &LabHost, port: u16, bytes: usize) -> f64 {
    let mut cmd = to.command("python3");
    cmd.args(["-c", TCP_SINK, &to.ip.to_string(), &port.to_string(), "20"]);
    let sink = to.spawn(cmd).expect("spawn tcp sink");
    sink.wait_for_log("ready", Duration::from_secs(10))
        .expect("tcp sink ready");
    let mut cmd = from.command("python3");
    cmd.args([
        "-c",
        TCP_SOURCE,
        &to.ip.to_string(),
        &port.to_string(),
        &bytes.to_string(),
        "20",
    ]);
    let out = from
        .run(cmd, Duration::from_secs(25))
        .expect("run tcp source");
    assert!(out.status.success(), "tcp source failed: {out:?}");
    sink.wait(Duration::from_secs(5)).expect("sink exits");
    out.stdout
        .trim()
        .strip_prefix("elapsed ")
        .and_then(|ms| ms.parse().ok())
        .unwrap_or_else(|| panic!("unexpected source output {:?}", out.stdout))
}
