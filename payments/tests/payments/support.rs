//! Starting the `posmesh-acquirer` binary on a free loopback port and reading its stats.

use posmesh_domain::{Currency, Money};
use posmesh_payments::card_data::{ForwardingCardData, Pan};
use posmesh_payments::connector::{
    CardPayment, DateTime, EntryMode, IsoTcpConnector, PaymentRef, Terminal,
};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running simulator, killed on drop.
pub struct Sim {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl Sim {
    /// Starts the simulator with `args` on `127.0.0.1:0`, bounded to 60 s, and waits
    /// (at most 10 s) until its stats file names its address.
    pub fn start(args: &[&str]) -> Sim {
        let dir = tempfile::tempdir().expect("tempdir");
        let stats = dir.path().join("stats.json");
        let child = Command::new(env!("CARGO_BIN_EXE_posmesh-acquirer"))
            .args([
                "--listen",
                "127.0.0.1:0",
                "--max-seconds",
                "60",
                "--stats-file",
            ])
            .arg(&stats)
            .arg("--capture")
            .arg(dir.path().join("capture.hex"))
            .args(args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("start posmesh-acquirer");
        let started = Instant::now();
        let mut sim = Sim {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            dir,
        };
        while started.elapsed() < Duration::from_secs(10) {
            if let Some(listen) = sim
                .try_stats()
                .and_then(|s| s["listen"].as_str().map(str::to_owned))
            {
                if !listen.is_empty() {
                    sim.addr = listen.parse().expect("listen address");
                    return sim;
                }
            }
            if let Ok(Some(status)) = sim.child.try_wait() {
                panic!("posmesh-acquirer exited at start: {status}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("posmesh-acquirer did not start within 10 s");
    }

    fn try_stats(&self) -> Option<serde_json::Value> {
        let text = std::fs::read_to_string(self.dir.path().join("stats.json")).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// The stats JSON as last written.
    pub fn stats(&self) -> serde_json::Value {
        self.try_stats().expect("stats file")
    }

    /// `(raw, unique)` arrivals of a class (`authorization`, `advice`, …).
    pub fn arrivals(&self, class: &str) -> (u64, u64) {
        let stats = self.stats();
        let class = &stats["by_class"][class];
        (
            class["raw"].as_u64().unwrap_or(0),
            class["unique"].as_u64().unwrap_or(0),
        )
    }

    /// A counter of the stats (`charges`, `reversed`, …).
    pub fn counter(&self, name: &str) -> u64 {
        self.stats()[name].as_u64().unwrap_or(0)
    }

    /// The capture file.
    pub fn capture(&self) -> PathBuf {
        self.dir.path().join("capture.hex")
    }

    /// A connector to this simulator with `timeout_ms`.
    pub fn connector(&self, timeout_ms: u64) -> IsoTcpConnector {
        connector_to(self.addr, timeout_ms)
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A connector to `addr`.
pub fn connector_to(addr: SocketAddr, timeout_ms: u64) -> IsoTcpConnector {
    IsoTcpConnector {
        addr,
        terminal: Terminal::new("TILL0001", "BREADBASKET").expect("terminal"),
        timeout: Duration::from_millis(timeout_ms),
    }
}

/// A GBP card payment of `amount_minor` with `pan` for sale `sale`.
pub fn payment(sale: &str, amount_minor: i64, pan: &str) -> CardPayment {
    let at = DateTime::new(11, 30, 9, 15, 0).expect("time");
    CardPayment {
        reference: PaymentRef {
            sale_id: sale.into(),
            tender_index: 0,
            attempt: 0,
        },
        card: ForwardingCardData::new(Pan::parse(pan).expect("pan"), "2812").expect("card"),
        amount: Money::new(amount_minor, Currency::from_code("GBP").expect("GBP")),
        taken_at_utc: at,
        taken_at_local: at,
        entry_mode: EntryMode::Contactless,
    }
}

/// Visa test PAN.
pub const VISA: &str = "4111111111111111";
/// Mastercard test PAN.
pub const MASTERCARD: &str = "5555555555554444";

/// The repository root.
pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("payments/ has a parent")
}
