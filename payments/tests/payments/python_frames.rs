//! The wire format is standard: frames captured from the simulator are decoded by the
//! third-party `pyiso8583` library (PyPI) in `payments/tests/python/test_iso8583_frames.py`.

use crate::support::{payment, repo_root, Sim, VISA};
use posmesh_payments::connector::PaymentConnector;
use std::process::Command;

#[tokio::test]
async fn pyiso8583_decodes_the_captured_frames() {
    let probe = Command::new("python3")
        .args(["-c", "import iso8583; print(iso8583.__version__)"])
        .output()
        .expect("python3 must be installed (scripts/setup.sh)");
    assert!(
        probe.status.success(),
        "pyiso8583 is not installed: run scripts/setup.sh (python3 -m pip install pyiso8583==4.0.1)\n{}",
        String::from_utf8_lossy(&probe.stderr)
    );

    // One of each exchange: 0100 timed out → 0400/0410; 0100/0110; 0200/0210 declined;
    // 0220/0230; 0221/0230.
    let sim = Sim::start(&[
        "--fault",
        "timeout",
        "--fault-count",
        "1",
        "--decline-amount-over",
        "50000",
    ]);
    let connector = sim.connector(300);
    connector
        .authorize(&payment("py/1", 1_000, VISA), false)
        .await;
    let slow_ok = sim.connector(2_000);
    slow_ok
        .authorize(&payment("py/2", 1_234, VISA), false)
        .await;
    slow_ok
        .authorize(&payment("py/3", 60_000, VISA), true)
        .await;
    slow_ok.forward(&payment("py/4", 4_321, VISA), false).await;
    slow_ok.forward(&payment("py/4", 4_321, VISA), true).await;

    let script = repo_root().join("payments/tests/python/test_iso8583_frames.py");
    let output = Command::new("python3")
        .arg(&script)
        .env("POSMESH_ISO8583_CAPTURE", sim.capture())
        .output()
        .expect("run python3");
    assert!(
        output.status.success(),
        "{} failed:\n{}\n{}",
        script.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    // unittest reports on stderr; shown with --nocapture.
    eprintln!("{}", String::from_utf8_lossy(&output.stderr));
}
