//! Bearer-token authentication of the cloud's admin HTTP API (RFC 6750): `posmesh cloud
//! serve` creates a random token in `<data-dir>/admin-token` (mode 0600) on first start, or
//! reads the one given with `--admin-token-file`; every admin route but `GET /v1/health`
//! then needs `Authorization: Bearer <token>`, compared in constant time, and answers 401
//! with a JSON error (`missing_token`, `invalid_token`) without it. The admin commands
//! (`posmesh report chain`, `posmesh cloud publish-catalog`, `posmesh store restore`) read
//! the same file.

use anyhow::Context;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// The token file's name in the cloud's data directory.
pub const TOKEN_FILE: &str = "admin-token";
/// Random bytes in a new token (hex-encoded: 64 characters).
pub const TOKEN_BYTES: usize = 32;
/// A token shorter than this (characters) is refused: it could be guessed.
pub const TOKEN_CHARS_MIN: usize = 32;

/// `<data_dir>/admin-token`.
pub fn default_path(data_dir: &Path) -> PathBuf {
    data_dir.join(TOKEN_FILE)
}

/// An admin token (kept out of `Debug` output).
#[derive(Clone)]
pub struct AdminToken(Arc<str>);

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(…)")
    }
}

impl AdminToken {
    /// The token's text, for an `Authorization: Bearer` header.
    pub fn secret(&self) -> &str {
        &self.0
    }

    /// Whether `presented` is this token, in time independent of where they differ.
    pub fn matches(&self, presented: &[u8]) -> bool {
        self.0.as_bytes().ct_eq(presented).into()
    }
}

/// Reads the token in `path`.
///
/// # Errors
/// The file cannot be read, is empty or shorter than [`TOKEN_CHARS_MIN`], or other users
/// may read it (its mode allows group or others).
pub fn read(path: &Path) -> anyhow::Result<AdminToken> {
    let metadata = std::fs::metadata(path)
        .with_context(|| format!("cannot read the admin token file {}", path.display()))?;
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        anyhow::bail!(
            "the admin token file {} has mode {mode:o}: other users may read it; `chmod 600` it",
            path.display()
        );
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the admin token file {}", path.display()))?;
    let token = text.trim();
    if token.len() < TOKEN_CHARS_MIN || token.chars().any(char::is_whitespace) {
        anyhow::bail!(
            "the admin token file {} must hold one token of at least {TOKEN_CHARS_MIN} characters without spaces",
            path.display()
        );
    }
    Ok(AdminToken(token.into()))
}

/// Reads the token in `path`, or creates it there (random, mode 0600, synced) if the file
/// does not exist.
///
/// # Errors
/// As [`read`]; the file cannot be created.
pub fn read_or_create(path: &Path) -> anyhow::Result<AdminToken> {
    if !path.exists() {
        let bytes: [u8; TOKEN_BYTES] = rand::random();
        let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let created = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path);
        match created {
            Ok(mut file) => {
                file.write_all(format!("{token}\n").as_bytes())
                    .and_then(|()| file.sync_all())
                    .with_context(|| format!("cannot write {}", path.display()))?;
                tracing::info!(file = %path.display(), "admin API token created");
            }
            // Created meanwhile by another process: read theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e).with_context(|| format!("cannot create {}", path.display())),
        }
    }
    read(path)
}

/// Where an admin command finds the token: `--admin-token-file`, else the cloud data
/// directory's `admin-token`.
///
/// # Errors
/// Neither is given, or the file cannot be read ([`read`]).
pub fn for_client(
    file: Option<&Path>,
    cloud_data_dir: Option<&Path>,
) -> anyhow::Result<AdminToken> {
    match (file, cloud_data_dir) {
        (Some(file), _) => read(file),
        (None, Some(dir)) => read(&default_path(dir)),
        (None, None) => anyhow::bail!(
            "the cloud's admin API needs its token: give --admin-token-file (the cloud \
             writes it to <cloud data dir>/{TOKEN_FILE}) or --cloud-data-dir"
        ),
    }
}

/// The flags of an admin command that calls the cloud's admin API.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct AdminTokenArgs {
    /// File with the cloud's admin API token (the cloud's `--admin-token-file`).
    #[arg(long, env = "POSMESH_CLOUD_ADMIN_TOKEN_FILE")]
    pub admin_token_file: Option<PathBuf>,
    /// The cloud's data directory, where it keeps the token (`admin-token`) by default;
    /// used when --admin-token-file is not given.
    #[arg(long, env = "POSMESH_CLOUD_DATA_DIR")]
    pub cloud_data_dir: Option<PathBuf>,
}

impl AdminTokenArgs {
    /// The token these flags point at ([`for_client`]).
    ///
    /// # Errors
    /// As [`for_client`].
    pub fn token(&self) -> anyhow::Result<AdminToken> {
        for_client(
            self.admin_token_file.as_deref(),
            self.cloud_data_dir.as_deref(),
        )
    }
}

fn unauthorized(code: &str, message: &str) -> Response {
    let mut response = (
        StatusCode::UNAUTHORIZED,
        Json(serde_json::json!({"error": {"code": code, "message": message}})),
    )
        .into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"posmesh-cloud-admin\""),
    );
    response
}

/// axum middleware: passes the request on only with `Authorization: Bearer <token>`.
pub async fn require_bearer(
    State(token): State<AdminToken>,
    request: Request,
    next: Next,
) -> Response {
    let Some(value) = request.headers().get(header::AUTHORIZATION) else {
        return unauthorized(
            "missing_token",
            "the admin API needs `Authorization: Bearer <token>` (the token is in the cloud \
             data directory's admin-token file, or the --admin-token-file it was started with)",
        );
    };
    let presented = value
        .as_bytes()
        .strip_prefix(b"Bearer ")
        .map(<[u8]>::trim_ascii);
    match presented {
        Some(presented) if token.matches(presented) => next.run(request).await,
        Some(_) => unauthorized("invalid_token", "the bearer token is not the admin token"),
        None => unauthorized(
            "invalid_token",
            "the Authorization header is not `Bearer <token>`",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_created_private_and_read_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = default_path(dir.path());
        let created = read_or_create(&path).expect("created");
        assert_eq!(created.secret().len(), 2 * TOKEN_BYTES);
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let again = read_or_create(&path).expect("read");
        assert_eq!(again.secret(), created.secret());
        assert!(again.matches(created.secret().as_bytes()));
        assert!(!again.matches(&created.secret().as_bytes()[1..]));
        assert!(!again.matches(b""));
    }

    #[test]
    fn weak_or_readable_token_files_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let short = dir.path().join("short");
        std::fs::write(&short, "abc\n").expect("write");
        std::fs::set_permissions(&short, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        assert!(read(&short)
            .expect_err("short")
            .to_string()
            .contains("at least"));
        let open = dir.path().join("open");
        std::fs::write(&open, "a".repeat(40)).expect("write");
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        assert!(read(&open)
            .expect_err("readable")
            .to_string()
            .contains("chmod 600"));
        let error = for_client(None, None)
            .expect_err("nothing given")
            .to_string();
        assert!(error.contains("--admin-token-file"), "{error}");
    }
}
