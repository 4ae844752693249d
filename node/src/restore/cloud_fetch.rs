//! What a restore reads from the cloud's admin API: the store's Raft snapshot, its
//! journals' heads and keys, and their entries page by page (bearer token, bounded pages).

use crate::cli::status::base_url;
use crate::cloud::admin_token::AdminToken;
use crate::cloud::journal_routes::{EntryPage, StoreJournal, ENTRIES_PAGE_MAX};
use base64::Engine;
use std::time::Duration;

/// How long one admin API call may take.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// Why the cloud could not give what a restore needs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// No answer (refused, timed out, DNS…).
    #[error("the cloud's admin API at {url} cannot be reached: {why}")]
    Unreachable {
        /// The URL called.
        url: String,
        /// The transport error.
        why: String,
    },
    /// The cloud has nothing of this store.
    #[error("the cloud knows no store {store_id} ({what}): check the store id in the device certificate")]
    UnknownStore {
        /// The store.
        store_id: String,
        /// What was missing (`no_snapshot`, `unknown_store`).
        what: String,
    },
    /// The token was refused.
    #[error("the cloud refused the admin token ({code}): give the right --admin-token-file")]
    Unauthorized {
        /// `missing_token` or `invalid_token`.
        code: String,
    },
    /// Any other error answer.
    #[error("{url}: {status}: {message} ({code})")]
    Refused {
        /// The URL called.
        url: String,
        /// HTTP status.
        status: u16,
        /// The error code.
        code: String,
        /// The error message.
        message: String,
    },
    /// An answer that does not parse.
    #[error("{url}: the answer does not parse: {why}")]
    Malformed {
        /// The URL called.
        url: String,
        /// Why.
        why: String,
    },
}

/// The cloud's admin API for one store.
pub struct CloudFetch {
    client: reqwest::Client,
    base: String,
    token: AdminToken,
    store_id: String,
}

impl CloudFetch {
    /// A client of the admin API at `http` (`host:port` or a URL) for `store_id`.
    ///
    /// # Errors
    /// The HTTP client cannot be built.
    pub fn new(http: &str, token: AdminToken, store_id: &str) -> anyhow::Result<Self> {
        Ok(Self {
            client: reqwest::Client::builder().timeout(CALL_TIMEOUT).build()?,
            base: base_url(http),
            token,
            store_id: store_id.to_owned(),
        })
    }

    async fn get<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, FetchError> {
        let url = format!("{}{path}", self.base);
        let response = self
            .client
            .get(&url)
            .bearer_auth(self.token.secret())
            .send()
            .await
            .map_err(|e| FetchError::Unreachable {
                url: url.clone(),
                why: e.to_string(),
            })?;
        let status = response.status().as_u16();
        let text = response.text().await.map_err(|e| FetchError::Unreachable {
            url: url.clone(),
            why: e.to_string(),
        })?;
        if status != 200 {
            let body: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
            let code = body["error"]["code"].as_str().unwrap_or("?").to_owned();
            let message = body["error"]["message"]
                .as_str()
                .unwrap_or(&text)
                .to_owned();
            return Err(match (status, code.as_str()) {
                (401, _) => FetchError::Unauthorized { code },
                (404, "no_snapshot" | "unknown_store") => FetchError::UnknownStore {
                    store_id: self.store_id.clone(),
                    what: code,
                },
                _ => FetchError::Refused {
                    url,
                    status,
                    code,
                    message,
                },
            });
        }
        serde_json::from_str(&text).map_err(|e| FetchError::Malformed {
            url,
            why: e.to_string(),
        })
    }

    /// The store's newest Raft snapshot: its log index and the state's JSON bytes.
    ///
    /// # Errors
    /// [`FetchError`].
    pub async fn snapshot(&self) -> Result<(u64, Vec<u8>), FetchError> {
        let path = format!("/v1/stores/{}/snapshot", self.store_id);
        let body: serde_json::Value = self.get(&path).await?;
        let malformed = |why: &str| FetchError::Malformed {
            url: path.clone(),
            why: why.to_owned(),
        };
        let index = body["raft_log_index"]
            .as_u64()
            .ok_or_else(|| malformed("no raft_log_index"))?;
        let state = body.get("state").ok_or_else(|| malformed("no state"))?;
        let bytes = serde_json::to_vec(state).map_err(|e| malformed(&e.to_string()))?;
        Ok((index, bytes))
    }

    /// Every device the cloud holds entries of, with its head and key.
    ///
    /// # Errors
    /// [`FetchError`].
    pub async fn journal(&self) -> Result<StoreJournal, FetchError> {
        self.get(&format!("/v1/stores/{}/journal", self.store_id))
            .await
    }

    /// `device_id`'s entries `1 ..= up_to_seq`, fetched in pages of [`ENTRIES_PAGE_MAX`];
    /// `progress` is told the seq reached after each page.
    ///
    /// # Errors
    /// [`FetchError`]; a page that is empty before `up_to_seq` or not base64.
    pub async fn entries(
        &self,
        device_id: &str,
        up_to_seq: u64,
        mut progress: impl FnMut(u64),
    ) -> Result<Vec<(u64, Vec<u8>)>, FetchError> {
        let mut entries = Vec::new();
        let mut after = 0;
        while after < up_to_seq {
            let path = format!(
                "/v1/stores/{}/journal/{device_id}/entries?after={after}&limit={ENTRIES_PAGE_MAX}",
                self.store_id
            );
            let page: EntryPage = self.get(&path).await?;
            let before = after;
            if page.entries.first().map(|(seq, _)| *seq) != Some(after + 1) {
                return Err(FetchError::Malformed {
                    url: path,
                    why: format!(
                        "the page does not start at seq {} (the cloud holds up to {up_to_seq})",
                        after + 1
                    ),
                });
            }
            for (seq, b64) in page.entries {
                if seq > up_to_seq {
                    break;
                }
                if seq != after + 1 {
                    return Err(FetchError::Malformed {
                        url: path.clone(),
                        why: format!("gap: seq {seq} after {after}"),
                    });
                }
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .map_err(|e| FetchError::Malformed {
                        url: path.clone(),
                        why: format!("entry {seq}: {e}"),
                    })?;
                after = seq;
                entries.push((seq, bytes));
            }
            debug_assert!(after > before, "a page moves forward");
            progress(after);
        }
        Ok(entries)
    }
}
