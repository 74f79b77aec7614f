//! [`Hooks`] from the configuration: webhooks (POST JSON, signed with
//! `X-Bdc-Signature: sha256=<hex HMAC-SHA256 of the body>` when a secret is
//! set, retried with backoff) and shell commands (the event JSON on stdin).
//! Deliveries run from durable `notify` messages, so a hook that keeps
//! failing is retried by the pipeline too (at-least-once).

use std::process::Stdio;
use std::time::Duration;

use async_trait::async_trait;
use hmac::{KeyInit, Mac};
use tokio::io::AsyncWriteExt;

use crate::config::{HookSpec, HookTarget};
use crate::model::HookEvent;
use crate::traits::{HookError, Hooks};

/// The signature header value for `body` under `secret`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| {
            // HMAC accepts keys of any length; unreachable.
            <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(b"")
                .unwrap_or_else(|_| unreachable!())
        });
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Configured hooks.
pub struct ConfigHooks {
    pub hooks: Vec<HookSpec>,
    pub client: reqwest::Client,
    /// Attempts per webhook delivery inside one notify.
    pub attempts: u32,
    pub backoff: Duration,
}

impl ConfigHooks {
    pub fn new(hooks: Vec<HookSpec>) -> ConfigHooks {
        // The workspace's one TLS provider (a no-op when already installed).
        let _ = rustls::crypto::ring::default_provider().install_default();
        ConfigHooks {
            hooks,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap_or_default(),
            attempts: 3,
            backoff: Duration::from_millis(200),
        }
    }

    async fn webhook(&self, url: &str, secret: Option<&str>, body: &[u8]) -> Result<(), HookError> {
        let mut last = String::new();
        for attempt in 0..self.attempts.max(1) {
            if attempt > 0 {
                tokio::time::sleep(self.backoff * 2u32.pow(attempt - 1)).await;
            }
            let mut req = self
                .client
                .post(url)
                .header("content-type", "application/json")
                .body(body.to_vec());
            if let Some(s) = secret {
                req = req.header("x-bdc-signature", signature(s, body));
            }
            match req.send().await {
                Ok(r) if r.status().is_success() => return Ok(()),
                Ok(r) => last = format!("HTTP {}", r.status()),
                Err(e) => last = e.to_string(),
            }
        }
        Err(HookError(format!("webhook {url}: {last}")))
    }

    async fn command(
        &self,
        command: &str,
        event: &HookEvent,
        body: &[u8],
    ) -> Result<(), HookError> {
        let mut child = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(command)
            .env("BDC_GREENNESS_EVENT", event.event.as_str())
            .env("BDC_GREENNESS_QUEUE", &event.queue)
            .env("BDC_GREENNESS_COMMIT", &event.commit_uri)
            .env("BDC_GREENNESS_SCOPE", event.scope.key())
            .env("BDC_GREENNESS_GREEN", if event.green { "1" } else { "0" })
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| HookError(format!("command hook `{command}`: {e}")))?;
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.write_all(body).await;
        }
        let status = tokio::time::timeout(Duration::from_secs(300), child.wait())
            .await
            .map_err(|_| HookError(format!("command hook `{command}` timed out")))?
            .map_err(|e| HookError(format!("command hook `{command}`: {e}")))?;
        if !status.success() {
            return Err(HookError(format!("command hook `{command}`: {status}")));
        }
        Ok(())
    }
}

#[async_trait]
impl Hooks for ConfigHooks {
    async fn notify(&self, event: &HookEvent) -> Result<(), HookError> {
        let body = serde_json::to_vec(event).map_err(|e| HookError(e.to_string()))?;
        for h in self
            .hooks
            .iter()
            .filter(|h| h.events.contains(&event.event))
        {
            let res = match &h.target {
                HookTarget::Webhook { url, secret } => {
                    self.webhook(url, secret.as_deref(), &body).await
                }
                HookTarget::Command { command } => self.command(command, event, &body).await,
            };
            metrics::counter!("bdc_greenness_hook_deliveries_total", "ok" => if res.is_ok() { "true" } else { "false" }).increment(1);
            res?;
        }
        Ok(())
    }

    fn wants(&self, kind: crate::model::EventKind) -> bool {
        self.hooks.iter().any(|h| h.events.contains(&kind))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_hex() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
