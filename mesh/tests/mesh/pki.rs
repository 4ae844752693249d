//! The chain CA on disk: files, modes, reload, serials, CRL.

use std::os::unix::fs::PermissionsExt;

use super::common::*;
use posmesh_mesh::pki::{load_identity, ChainCa, NodeCredentials, CA_KEY_FILE, NODE_KEY_FILE};
use posmesh_mesh::tls::identity_of_cert;
use posmesh_mesh::{MeshError, PeerIdentity};

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).expect("stat").permissions().mode() & 0o777
}

#[test]
fn ca_files_and_key_modes() -> TestResult {
    let c = chain("acme");
    assert_eq!(mode(&c.dir.path().join(CA_KEY_FILE)), 0o600);
    assert!(matches!(
        ChainCa::init("acme", c.dir.path()),
        Err(MeshError::AlreadyExists { .. })
    ));
    let issued = issue(&c.ca, &device("acme", "s1", "till-1"));
    let node_dir = tempfile::tempdir()?;
    issued.write_identity(node_dir.path())?;
    assert_eq!(mode(&node_dir.path().join(NODE_KEY_FILE)), 0o600);
    assert!(matches!(
        issued.write_identity(node_dir.path()),
        Err(MeshError::AlreadyExists { .. })
    ));
    let loaded = load_identity(node_dir.path())?;
    assert_eq!(loaded.identity, device("acme", "s1", "till-1"));
    assert!(loaded.crl.is_none());
    Ok(())
}

#[test]
fn reload_keeps_issuing_verifiable_certs_with_increasing_serials() -> TestResult {
    let c = chain("acme");
    let first = issue(&c.ca, &device("acme", "s1", "a"));
    let reloaded = ChainCa::load(c.dir.path())?;
    assert_eq!(reloaded.chain_id(), "acme");
    assert_eq!(reloaded.cert_der(), c.ca.cert_der());
    let second = issue(&reloaded, &device("acme", "s1", "b"));
    let a = u64::from_str_radix(&first.serial_hex, 16)?;
    let b = u64::from_str_radix(&second.serial_hex, 16)?;
    assert!(b > a, "serials {a} then {b}");
    assert_ne!(first.fingerprint_sha256_hex, second.fingerprint_sha256_hex);
    assert_eq!(first.fingerprint_sha256_hex.len(), 64);
    let creds = NodeCredentials::from_issued(&second)?;
    assert_eq!(identity_of_cert(&creds.cert)?, device("acme", "s1", "b"));
    Ok(())
}

#[test]
fn issue_refuses_other_chain_and_empty_window() {
    let c = chain("acme");
    let (nb, na) = valid_window();
    assert!(c.ca.issue(&device("zeta", "s1", "a"), nb, na).is_err());
    assert!(matches!(
        c.ca.issue(&device("acme", "s1", "a"), na, nb),
        Err(MeshError::Validity(_))
    ));
    let cloud = PeerIdentity::new_cloud("acme", "hq").expect("cloud");
    assert!(c.ca.issue(&cloud, nb, na).is_ok());
}

#[test]
fn crl_written_and_loaded_by_nodes() -> TestResult {
    let c = chain("acme");
    let victim = issue(&c.ca, &device("acme", "s1", "lost"));
    let crl_pem = c.ca.revoke(&[&victim.serial_hex], utc(2025), utc(2026))?;
    assert!(crl_pem.contains("BEGIN X509 CRL"));
    let on_disk = std::fs::read_to_string(c.dir.path().join("crl.pem"))?;
    assert_eq!(on_disk, crl_pem);
    assert!(c.ca.revoke(&["not-hex"], utc(2025), utc(2026)).is_err());
    assert!(c.ca.revoke(&[], utc(2026), utc(2025)).is_err());
    // A node directory with the CRL copied in loads it.
    let node = issue(&c.ca, &device("acme", "s1", "ok"));
    let node_dir = tempfile::tempdir()?;
    node.write_identity(node_dir.path())?;
    std::fs::write(node_dir.path().join("crl.pem"), &crl_pem)?;
    assert!(load_identity(node_dir.path())?.crl.is_some());
    Ok(())
}
