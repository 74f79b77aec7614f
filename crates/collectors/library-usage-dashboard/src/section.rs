//! `bdc serve`'s `/dashboard/usage` and `/dashboard/usage/<library>` pages
//! (behind the dashboard's sign-in): the newest stored snapshot, rendered
//! with the same fragments as the static site.

use std::collections::HashMap;

use bdc_dashboard::Section;
use bdc_storage::Storage;

use crate::metrics::DashboardData;
use crate::render::{self, Links};

/// The dashboard section (register it in `bdc`'s section list).
pub struct UsageSection {
    pub storage: Storage,
}

impl UsageSection {
    pub fn new(storage: Storage) -> Self {
        UsageSection { storage }
    }

    async fn data(&self) -> Result<Option<DashboardData>, String> {
        let Some((_, json)) = crate::store::latest_snapshot(&self.storage)
            .await
            .map_err(|e| e.to_string())?
        else {
            return Ok(None);
        };
        serde_json::from_str(&json)
            .map(Some)
            .map_err(|e| format!("the stored dashboard snapshot is unreadable: {e}"))
    }
}

const EMPTY: &str = "<p class=\"muted\">No library usage data yet: run <code>bdc run library-usage-dashboard</code>.</p>";

#[async_trait::async_trait]
impl Section for UsageSection {
    fn path(&self) -> &'static str {
        "usage"
    }
    fn label(&self) -> &'static str {
        "Library usage"
    }
    async fn render(&self, _query: &HashMap<String, String>) -> Result<String, String> {
        match self.data().await? {
            None => Ok(EMPTY.to_owned()),
            Some(d) => render::index_fragment(&d, Links::Serve).map_err(|e| e.to_string()),
        }
    }
    async fn render_sub(
        &self,
        sub: &str,
        _query: &HashMap<String, String>,
    ) -> Result<Option<(String, String)>, String> {
        let Some(d) = self.data().await? else {
            return Ok(None);
        };
        let key = sub.trim_end_matches('/');
        let Some(l) = d
            .libraries
            .iter()
            .find(|l| l.key == key || render::slug(&l.key) == key)
        else {
            return Ok(None);
        };
        let body = render::library_fragment(&d, l, Links::Serve).map_err(|e| e.to_string())?;
        Ok(Some((
            format!("Library usage: {} ({})", l.name, l.key),
            body,
        )))
    }
}
