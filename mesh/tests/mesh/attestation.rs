//! Key attestations: a device's certificate vouches for its Ed25519 chain-head key, and a
//! receiver checks certificate, policy and signature.

use super::common::*;
use posmesh_mesh::pki::NodeCredentials;
use posmesh_mesh::tls::{AcceptPolicy, ChainTrust, KeyAttestation, RefusalReason};
use posmesh_mesh::MeshError;
use rustls_pki_types::UnixTime;

fn now() -> UnixTime {
    // Inside the fixtures' validity window (see `valid_window`).
    UnixTime::since_unix_epoch(std::time::Duration::from_secs(
        utc(2030).unix_timestamp() as u64
    ))
}

fn refused(result: Result<posmesh_mesh::tls::AttestedKey, MeshError>) -> RefusalReason {
    match result {
        Err(MeshError::AttestationRefused(reason)) => reason,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn an_attested_key_verifies_and_tampering_is_refused() -> TestResult {
    let c = chain("acme");
    let till = NodeCredentials::from_issued(&issue(&c.ca, &device("acme", "s1", "till-1")))?;
    let attestation = KeyAttestation::sign(&till, 7, [9; 32])?;
    let trust = ChainTrust::new(c.ca.cert_der(), None)?;
    let same_store = AcceptPolicy::for_identity(&device("acme", "s1", "till-2"));
    let proved = attestation.verify(&trust, &same_store, now())?;
    assert_eq!(proved.identity, device("acme", "s1", "till-1"));
    assert_eq!(
        (proved.device_incarnation, proved.signing_public_key),
        (7, [9; 32])
    );

    let mut other_key = attestation.clone();
    other_key.signing_public_key = [8; 32];
    assert_eq!(
        refused(other_key.verify(&trust, &same_store, now())),
        RefusalReason::Invalid
    );
    let mut other_incarnation = attestation.clone();
    other_incarnation.device_incarnation = 8;
    assert_eq!(
        refused(other_incarnation.verify(&trust, &same_store, now())),
        RefusalReason::Invalid
    );
    let other_store = AcceptPolicy::for_identity(&device("acme", "s2", "till-9"));
    assert_eq!(
        refused(attestation.verify(&trust, &other_store, now())),
        RefusalReason::OtherStore
    );
    Ok(())
}

#[test]
fn an_attestation_from_another_chain_is_refused() -> TestResult {
    let ours = chain("acme");
    let theirs = chain("evil");
    let stranger =
        NodeCredentials::from_issued(&issue(&theirs.ca, &device("evil", "s1", "till-1")))?;
    let attestation = KeyAttestation::sign(&stranger, 1, [1; 32])?;
    let trust = ChainTrust::new(ours.ca.cert_der(), None)?;
    let policy = AcceptPolicy::for_identity(&device("acme", "s1", "till-2"));
    let reason = refused(attestation.verify(&trust, &policy, now()));
    assert!(
        matches!(
            reason,
            RefusalReason::OtherChain | RefusalReason::UnknownIssuer
        ),
        "{reason:?}"
    );
    Ok(())
}
