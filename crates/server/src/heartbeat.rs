//! Worker heartbeats: a long-running `bdc` process keeps its row in
//! `worker_heartbeats` fresh so `/health/` counts it as a live worker
//! (`celery_workers`), and removes the row when it stops cleanly.

use std::time::Duration;

use bdc_storage::Storage;
use bdc_storage::workers::WorkerInfo;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

/// Smallest accepted heartbeat interval.
const MIN_INTERVAL: Duration = Duration::from_millis(10);

/// This process's identity: `worker_id` = `hostname:pid:<8 hex>` (the
/// random suffix tells apart a restarted process that reused a pid).
pub fn worker_info(role: &str, version: &str) -> WorkerInfo {
    let hostname = hostname();
    let pid = std::process::id();
    let uuid = uuid::Uuid::new_v4().simple().to_string();
    let short = uuid.get(..8).unwrap_or(&uuid);
    let now = bdc_storage::now();
    WorkerInfo {
        worker_id: format!("{hostname}:{pid}:{short}"),
        hostname,
        pid: i64::from(pid),
        role: role.to_owned(),
        version: version.to_owned(),
        started_at: now,
        last_seen_at: now,
    }
}

/// The host name: the kernel's, else `/etc/hostname`, else `$HOSTNAME` /
/// `$COMPUTERNAME`, else `localhost`.
fn hostname() -> String {
    let from_files = ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok());
    let from_env = ["HOSTNAME", "COMPUTERNAME"]
        .iter()
        .filter_map(|v| std::env::var(v).ok());
    from_files
        .chain(from_env)
        .map(|s| s.trim().to_owned())
        .find(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// Spawn a task that upserts `info`'s heartbeat right away and then every
/// `interval` (at least 10 ms) until `shutdown` turns true or its sender is
/// dropped; it then removes the row. Database errors are logged and retried
/// at the next tick; a write in progress is abandoned on shutdown.
pub fn spawn(
    storage: Storage,
    info: WorkerInfo,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval.max(MIN_INTERVAL));
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut failing = false;
        loop {
            let beat = async {
                ticker.tick().await;
                storage.workers().heartbeat(&info).await
            };
            tokio::select! {
                biased;
                _ = shutdown.wait_for(|stop| *stop) => break,
                result = beat => match result {
                    Ok(()) => {
                        if failing {
                            tracing::info!(worker_id = %info.worker_id, "worker heartbeat recovered");
                        }
                        failing = false;
                    }
                    Err(e) => {
                        if !failing {
                            tracing::warn!(worker_id = %info.worker_id, error = %e, "cannot write the worker heartbeat");
                        }
                        failing = true;
                    }
                },
            }
        }
        match storage.workers().remove(&info.worker_id).await {
            Ok(()) => tracing::debug!(worker_id = %info.worker_id, "worker heartbeat removed"),
            Err(e) => {
                tracing::warn!(worker_id = %info.worker_id, error = %e, "cannot remove the worker heartbeat")
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_id_shape() {
        let info = worker_info("serve", "0.1.0");
        let parts: Vec<&str> = info.worker_id.rsplitn(3, ':').collect();
        assert_eq!(parts.len(), 3, "{}", info.worker_id);
        assert_eq!(parts[0].len(), 8);
        assert!(parts[0].chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(parts[1], std::process::id().to_string());
        assert_eq!(parts[2], info.hostname);
        assert!(!info.hostname.is_empty());
        assert_eq!(info.role, "serve");
        assert_ne!(worker_info("serve", "0.1.0").worker_id, info.worker_id);
    }
}
