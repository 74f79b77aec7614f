//! Dashboard pages contributed by the domain crates (greenness, audit,
//! people from the identity hub, library usage: its section lives in its
//! collector crate),
//! composed here so the dashboard crate depends on none of them. Every
//! value is HTML-escaped with `bdc_dashboard::escape`.

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::Arc;

use bdc_config::Config;
use bdc_dashboard::{Section, escape};
use bdc_storage::Storage;

/// `greenness`: the greenness store (on MySQL when
/// `BDC_GREENNESS_DATABASE_URL` says so).
pub fn all(
    config: &Config,
    storage: &Storage,
    greenness: bdc_greenness::store::SqlStore,
) -> Vec<Arc<dyn Section>> {
    vec![
        Arc::new(GreennessSection { store: greenness }),
        Arc::new(AuditSection {
            storage: storage.clone(),
        }),
        Arc::new(bdc_collector_library_usage_dashboard::UsageSection::new(
            storage.clone(),
        )),
        Arc::new(PeopleSection {
            storage: storage.clone(),
        }),
        Arc::new(bdc_search::SearchSection {
            storage: storage.clone(),
            workspace: config.workspace_dir.clone(),
        }),
    ]
}

/// The identity hub: people (merged profiles) and, per person, every
/// source's activity newest first (`/dashboard/people/<id>`).
struct PeopleSection {
    storage: Storage,
}

/// Records on a person page.
const PERSON_ACTIVITY: u32 = 200;

#[async_trait::async_trait]
impl Section for PeopleSection {
    fn path(&self) -> &'static str {
        "people"
    }
    fn label(&self) -> &'static str {
        "People"
    }
    async fn render(&self, query: &HashMap<String, String>) -> Result<String, String> {
        let q = param(query, "q");
        let mut html = String::new();
        let _ = write!(
            html,
            "<form class=\"filters\" method=\"get\" action=\"/dashboard/people\" id=\"people-search\">\
             <label>Identity id, address or login <input name=\"q\" id=\"p-q\" value=\"{}\"></label>\
             <button type=\"submit\" id=\"p-find\">Find</button></form>",
            escape(q.as_deref().unwrap_or(""))
        );
        let rows = match &q {
            Some(q) => {
                let ids = bdc_identity::hub::find_identities(&self.storage, q)
                    .await
                    .map_err(|e| e.to_string())?;
                let mut rows = Vec::new();
                for id in ids {
                    if let Some(i) = bdc_identity::hub::get_identity(&self.storage, id)
                        .await
                        .map_err(|e| e.to_string())?
                    {
                        let mut sources: Vec<&str> =
                            i.profiles.iter().map(|p| p.source.as_str()).collect();
                        sources.sort_unstable();
                        sources.dedup();
                        rows.push(bdc_identity::hub::IdentitySummary {
                            id: i.id,
                            display_name: i.display_name.clone(),
                            is_bot: i.is_bot,
                            locked: i.locked,
                            profiles: i.profiles.len() as i64,
                            sources: sources.join(","),
                        });
                    }
                }
                rows
            }
            None => bdc_identity::hub::list_identities(&self.storage, false, 100)
                .await
                .map_err(|e| e.to_string())?,
        };
        if rows.is_empty() {
            html.push_str(if q.is_some() {
                "<p class=\"muted\" id=\"no-people\">Nobody matches.</p>"
            } else {
                "<p class=\"muted\" id=\"no-people\">No identities yet: run <code>bdc run identities</code> after the collectors.</p>"
            });
            return Ok(html);
        }
        html.push_str("<table id=\"people\"><thead><tr><th>Id</th><th>Name</th><th>Profiles</th><th>Sources</th><th></th></tr></thead><tbody>");
        for r in &rows {
            let _ = write!(
                html,
                "<tr class=\"person\"><td><a href=\"/dashboard/people/{0}\">{0}</a></td><td>{1}</td><td>{2}</td><td>{3}</td><td>{4}</td></tr>",
                r.id,
                escape(r.display_name.as_deref().unwrap_or("—")),
                r.profiles,
                escape(&r.sources),
                match (r.is_bot, r.locked) {
                    (true, _) => "bot",
                    (false, true) => "locked",
                    _ => "",
                }
            );
        }
        html.push_str("</tbody></table>");
        Ok(html)
    }

    async fn render_sub(
        &self,
        sub: &str,
        _query: &HashMap<String, String>,
    ) -> Result<Option<(String, String)>, String> {
        let Ok(id) = sub.trim_end_matches('/').parse::<i64>() else {
            return Ok(None);
        };
        let Some(person) = bdc_identity::hub::get_identity(&self.storage, id)
            .await
            .map_err(|e| e.to_string())?
        else {
            return Ok(None);
        };
        let filter = bdc_storage::activity::ActivityFilter {
            limit: Some(PERSON_ACTIVITY),
            ..Default::default()
        };
        let activity =
            crate::cmd_identities::person_activity(&self.storage, &id.to_string(), &filter)
                .await
                .map_err(|e| format!("{e:#}"))?;
        let name = person
            .display_name
            .clone()
            .unwrap_or_else(|| format!("identity {id}"));
        let mut html = String::from("<p><a href=\"/dashboard/people\">← people</a></p>");
        let _ = write!(
            html,
            "<p id=\"person-flags\">Identity {id}{}{}</p>",
            if person.is_bot { " · bot" } else { "" },
            if person.locked {
                " · locked (automatic rules never change it)"
            } else {
                ""
            }
        );
        html.push_str("<h2>Profiles</h2><table id=\"profiles\"><thead><tr><th>Source</th><th>Id</th><th>Name</th><th>Login</th><th>Addresses</th></tr></thead><tbody>");
        for p in &person.profiles {
            let _ = write!(
                html,
                "<tr class=\"profile\"><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&p.source),
                escape(&p.source_id),
                escape(p.display_name.as_deref().unwrap_or("")),
                escape(p.login.as_deref().unwrap_or("")),
                escape(&p.emails.join(", "))
            );
        }
        html.push_str("</tbody></table>");
        // Activity per month (what a reader scans first), then the list.
        let mut per_month: std::collections::BTreeMap<String, f64> = Default::default();
        for a in &activity {
            *per_month
                .entry(a.record.occurred_at().format("%Y-%m").to_string())
                .or_default() += 1.0;
        }
        let points: Vec<(String, f64)> = per_month.into_iter().collect();
        let _ = write!(
            html,
            "<h2>Activity</h2>{}",
            bdc_dashboard::svg::bar_chart(
                &format!("Records per month ({} newest)", activity.len()),
                "person-activity",
                &points
            )
        );
        if activity.is_empty() {
            html.push_str("<p class=\"muted\" id=\"no-activity\">No activity recorded for this person's profiles.</p>");
        } else {
            html.push_str("<table id=\"activity\"><thead><tr><th>At (UTC)</th><th>Source</th><th>Kind</th><th>Actor</th><th>Title</th></tr></thead><tbody>");
            for a in &activity {
                let r = &a.record;
                let title = escape(r.title().unwrap_or(r.external_id()));
                let title = match r.url() {
                    Some(u) if u.starts_with("https://") || u.starts_with("http://") => {
                        format!("<a href=\"{}\">{title}</a>", escape(u))
                    }
                    _ => title,
                };
                let _ = write!(
                    html,
                    "<tr class=\"record\" data-source=\"{1}\"><td>{0}</td><td>{1}</td><td>{2}</td><td>{3}</td><td>{4}</td></tr>",
                    escape(&r.occurred_at().format("%Y-%m-%d %H:%M").to_string()),
                    escape(r.source_system()),
                    escape(r.kind()),
                    escape(r.actor().unwrap_or("")),
                    title
                );
            }
            html.push_str("</tbody></table>");
        }
        Ok(Some((name, html)))
    }
}

/// Greenness per queue and per project, with last green and recent requests.
struct GreennessSection {
    store: bdc_greenness::store::SqlStore,
}

fn short_uri(uri: &str) -> String {
    // git://remote/repo/ref/<ref>/<sha>: show ref and short sha.
    match uri.rsplit_once('/') {
        Some((_, sha)) if sha.len() >= 12 => format!("{}…", &sha[..12]),
        _ => uri.to_owned(),
    }
}

#[async_trait::async_trait]
impl Section for GreennessSection {
    fn path(&self) -> &'static str {
        "greenness"
    }
    fn label(&self) -> &'static str {
        "Greenness"
    }
    async fn render(&self, query: &HashMap<String, String>) -> Result<String, String> {
        let store = &self.store;
        let gate = bdc_greenness::service::Gate { store };
        let mut names = store.queue_names().await.map_err(|e| e.to_string())?;
        if let Some(q) = query.get("queue").filter(|q| !q.is_empty()) {
            names.retain(|n| n == q);
        }
        let mut html = String::new();
        if names.is_empty() {
            html.push_str("<p class=\"muted\">No greenness queues yet (configure them in the greenness YAML).</p>");
        }
        for name in names {
            let st = gate.status(&name, 20).await.map_err(|e| e.to_string())?;
            let _ = write!(
                html,
                "<h2 id=\"queue-{0}\">Queue {0}</h2><p>Last green: <strong class=\"{1}\">{2}</strong> · pending stage messages: {3}</p>",
                escape(&st.queue),
                if st.last_green.is_some() { "ok" } else { "bad" },
                escape(
                    &st.last_green
                        .as_ref()
                        .map(|g| short_uri(&g.commit_uri))
                        .unwrap_or_else(|| "none".into())
                ),
                st.pending_messages
            );
            html.push_str("<table class=\"projects\"><thead><tr><th>Project</th><th>Last green</th><th>Latest outcome</th><th>Degree</th><th>Recorded (UTC)</th></tr></thead><tbody>");
            for p in &st.projects {
                let (outcome, degree, at, class) = match &p.latest {
                    Some(r) => (
                        r.outcome.as_str().to_owned(),
                        format!("{:.2}", r.degree),
                        r.recorded_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                        if r.outcome.is_green() { "ok" } else { "bad" },
                    ),
                    None => ("not recorded".into(), "—".into(), "—".into(), "muted"),
                };
                let _ = write!(
                    html,
                    "<tr data-project=\"{0}\"><td>{0}</td><td>{1}</td><td class=\"{2}\">{3}</td><td>{4}</td><td>{5}</td></tr>",
                    escape(&p.project),
                    escape(
                        &p.last_green
                            .as_ref()
                            .map(|g| short_uri(&g.commit_uri))
                            .unwrap_or_else(|| "none".into())
                    ),
                    class,
                    escape(&outcome),
                    degree,
                    at
                );
            }
            html.push_str("</tbody></table>");
            html.push_str("<table class=\"requests\"><thead><tr><th>Request</th><th>Commit</th><th>State</th><th>Validation</th><th>Mode</th><th>Degree</th></tr></thead><tbody>");
            for r in &st.requests {
                let _ = write!(
                    html,
                    "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    escape(&r.id),
                    escape(&short_uri(&r.commit_uri)),
                    escape(r.state.as_str()),
                    escape(r.validation),
                    escape(r.mode.as_deref().unwrap_or("—")),
                    r.degree
                        .map(|d| format!("{d:.2}"))
                        .unwrap_or_else(|| "—".into())
                );
            }
            html.push_str("</tbody></table>");
        }
        Ok(html)
    }
}

/// The audit timeline with filters and drill-down into one transaction.
struct AuditSection {
    storage: Storage,
}

fn param(query: &HashMap<String, String>, key: &str) -> Option<String> {
    query
        .get(key)
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

#[async_trait::async_trait]
impl Section for AuditSection {
    fn path(&self) -> &'static str {
        "audit"
    }
    fn label(&self) -> &'static str {
        "Audit"
    }
    async fn render(&self, query: &HashMap<String, String>) -> Result<String, String> {
        let mut html = String::new();
        if let Some(tx) = param(query, "tx").and_then(|t| t.parse::<i64>().ok()) {
            let detail = bdc_audit::query::transaction_changes(&self.storage, tx)
                .await
                .map_err(|e| e.to_string())?;
            let Some(d) = detail else {
                return Ok(format!("<p class=\"bad\">No audit transaction {tx}.</p>"));
            };
            let _ = write!(
                html,
                "<p><a href=\"/dashboard/audit\">← timeline</a></p><h2 id=\"tx\">Transaction {}</h2><p>At {} by <code>{}</code>{}</p>",
                d.transaction_id,
                escape(d.occurred_at.as_deref().unwrap_or("—")),
                escape(
                    &d.actor
                        .as_ref()
                        .map(|a| a.to_string())
                        .unwrap_or_else(|| "no actor".into())
                ),
                d.action
                    .as_deref()
                    .map(|a| format!(" · action <strong>{}</strong>", escape(a)))
                    .unwrap_or_default()
            );
            for a in &d.actions {
                let _ = write!(
                    html,
                    "<p>Action <strong>{}</strong> ({}){}</p>",
                    escape(&a.name),
                    escape(&a.status),
                    a.reason
                        .as_deref()
                        .map(|r| format!(": {}", escape(r)))
                        .unwrap_or_default()
                );
            }
            html.push_str("<table id=\"changes\"><thead><tr><th>Table</th><th>Key</th><th>Op</th><th>Changed</th><th>Before</th><th>After</th></tr></thead><tbody>");
            for c in &d.changes {
                let _ = write!(
                    html,
                    "<tr class=\"change\"><td>{}</td><td><code>{}</code></td><td>{}{}</td><td><code>{}</code></td><td><code>{}</code></td><td><code>{}</code></td></tr>",
                    escape(&c.table_name),
                    escape(&c.pk.to_string()),
                    escape(&c.op),
                    if c.baseline { " (baseline)" } else { "" },
                    escape(
                        &c.changed_fields
                            .as_ref()
                            .map(|v| v.to_string())
                            .unwrap_or_default()
                    ),
                    escape(
                        &c.changed_from
                            .as_ref()
                            .map(|v| v.to_string())
                            .unwrap_or_default()
                    ),
                    escape(
                        &c.data_after
                            .as_ref()
                            .map(|v| v.to_string())
                            .unwrap_or_default()
                    ),
                );
            }
            html.push_str("</tbody></table>");
            return Ok(html);
        }
        if let (Some(table), Some(pk)) = (param(query, "table"), param(query, "pk")) {
            return row_history(&self.storage, &table, &pk).await;
        }
        let filter = bdc_audit::query::TimelineFilter {
            table: param(query, "table"),
            actor_type: param(query, "actor_type"),
            actor_id: param(query, "actor_id"),
            action: param(query, "action"),
            cursor: param(query, "cursor").and_then(|c| c.parse().ok()),
            limit: Some(
                param(query, "limit")
                    .and_then(|l| l.parse().ok())
                    .unwrap_or(100),
            ),
            ..Default::default()
        };
        let value = |k: &str| escape(&param(query, k).unwrap_or_default());
        let _ = write!(
            html,
            "<form class=\"filters\" method=\"get\" action=\"/dashboard/audit\" id=\"audit-filters\">\
             <label>Table <input name=\"table\" id=\"a-table\" value=\"{}\"></label>\
             <label>Actor type <input name=\"actor_type\" id=\"a-actor-type\" value=\"{}\" placeholder=\"job, cli, http, system\"></label>\
             <label>Actor id <input name=\"actor_id\" id=\"a-actor-id\" value=\"{}\"></label>\
             <label>Action <input name=\"action\" id=\"a-action\" value=\"{}\"></label>\
             <label>Limit <input name=\"limit\" value=\"{}\" size=\"4\"></label>\
             <button type=\"submit\" id=\"a-apply\">Apply</button></form>",
            value("table"),
            value("actor_type"),
            value("actor_id"),
            value("action"),
            filter.limit.unwrap_or(100)
        );
        let page = bdc_audit::query::timeline(&self.storage, &filter)
            .await
            .map_err(|e| e.to_string())?;
        html.push_str("<table id=\"timeline\"><thead><tr><th>At (UTC)</th><th>Tx</th><th>Actor</th><th>Action</th><th>Table</th><th>Key</th><th>Op</th><th>Changed fields</th></tr></thead><tbody>");
        for c in &page.items {
            let _ = write!(
                html,
                "<tr class=\"change\" data-table=\"{1}\"><td>{0}</td><td><a href=\"/dashboard/audit?tx={2}\">{2}</a></td><td>{3}</td><td>{4}</td><td>{1}</td><td><a class=\"row-history\" href=\"/dashboard/audit?{9}\"><code>{5}</code></a></td><td>{6}{7}</td><td><code>{8}</code></td></tr>",
                escape(&c.occurred_at),
                escape(&c.table_name),
                c.transaction_id,
                escape(&format!(
                    "{}:{}",
                    c.actor_type.as_deref().unwrap_or("-"),
                    c.actor_id.as_deref().unwrap_or("-")
                )),
                escape(c.action.as_deref().unwrap_or("")),
                escape(&c.pk.to_string()),
                escape(&c.op),
                if c.baseline { " (baseline)" } else { "" },
                escape(
                    &c.changed_fields
                        .as_ref()
                        .map(|v| v.to_string())
                        .unwrap_or_default()
                ),
                escape(
                    &form_urlencoded::Serializer::new(String::new())
                        .append_pair("table", &c.table_name)
                        .append_pair("pk", &c.pk.to_string())
                        .finish()
                ),
            );
        }
        html.push_str("</tbody></table>");
        if let Some(next) = page.next_cursor {
            let mut q = form_urlencoded::Serializer::new(String::new());
            let mut keys: Vec<_> = query
                .iter()
                .filter(|(k, _)| k.as_str() != "cursor")
                .collect();
            keys.sort();
            for (k, v) in keys {
                q.append_pair(k, v);
            }
            q.append_pair("cursor", &next.to_string());
            let _ = write!(
                html,
                "<p><a href=\"/dashboard/audit?{}\" id=\"older\">Older changes →</a></p>",
                escape(&q.finish())
            );
        }
        Ok(html)
    }
}

/// Every version of one row with the difference to the previous version.
async fn row_history(storage: &Storage, table: &str, pk: &str) -> Result<String, String> {
    let versions = match bdc_audit::asof::history(storage, table, pk, 1000).await {
        Ok(v) => v,
        Err(e @ bdc_audit::AuditError::InvalidFilter { .. }) => {
            return Ok(format!("<p class=\"bad\">{}</p>", escape(&e.to_string())));
        }
        Err(e) => return Err(e.to_string()),
    };
    let mut html = String::new();
    let _ = write!(
        html,
        "<p><a href=\"/dashboard/audit\">← timeline</a></p><h2 id=\"row-history\">Row history: {} <code>{}</code></h2><p>{} version(s), oldest first.</p>",
        escape(table),
        escape(pk),
        versions.len()
    );
    html.push_str("<table id=\"versions\"><thead><tr><th>At (UTC)</th><th>Tx</th><th>Actor</th><th>Op</th><th>Column</th><th>Before</th><th>After</th></tr></thead><tbody>");
    for v in &versions {
        let head = format!(
            "<td>{}</td><td><a href=\"/dashboard/audit?tx={1}\">{1}</a></td><td><code>{2}</code></td><td>{3}{4}</td>",
            escape(&v.occurred_at),
            v.transaction_id,
            escape(
                &v.actor
                    .as_ref()
                    .map(|a| a.to_string())
                    .unwrap_or_else(|| "no actor".into())
            ),
            escape(&v.op),
            if v.baseline { " (baseline)" } else { "" },
        );
        if v.diff.is_empty() {
            let _ = write!(
                html,
                "<tr class=\"version\">{head}<td colspan=\"3\">—</td></tr>"
            );
        }
        for (i, d) in v.diff.iter().enumerate() {
            let _ = write!(
                html,
                "<tr class=\"{}\">{}<td>{}</td><td><code>{}</code></td><td><code>{}</code></td></tr>",
                if i == 0 { "version" } else { "version-more" },
                if i == 0 {
                    head.as_str()
                } else {
                    "<td></td><td></td><td></td><td></td>"
                },
                escape(&d.column),
                escape(&d.before.to_string()),
                escape(&d.after.to_string()),
            );
        }
    }
    html.push_str("</tbody></table>");
    Ok(html)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bdc_testsupport::{Kind, TestDb};

    async fn row_history_page(kind: Kind) {
        let db = TestDb::new(kind).await;
        let s = Storage::connect(db.url(), &bdc_storage::ConnectOptions::default())
            .await
            .unwrap();
        s.migrate_parts(&[&bdc_audit::AUDIT]).await.unwrap();
        s.execute_raw("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT)".into())
            .await
            .unwrap();
        let cfg = bdc_audit::AuditConfig::parse("cover_platform_tables: false\n", "t").unwrap();
        bdc_audit::triggers::cover_tables(&s, &cfg, &["items".into()], false)
            .await
            .unwrap();
        let w = s.with_actor(&bdc_core::Actor::http("carol"));
        for sql in [
            "INSERT INTO items (id, name) VALUES (7, 'old<b>')",
            "UPDATE items SET name = 'new' WHERE id = 7",
        ] {
            w.execute_raw(sql.to_owned()).await.unwrap();
        }
        let section = AuditSection { storage: s.clone() };
        let mut q = HashMap::new();
        q.insert("table".to_owned(), "items".to_owned());
        q.insert("pk".to_owned(), "{\"id\": 7}".to_owned());
        let html = section.render(&q).await.unwrap();
        assert!(html.contains("Row history"), "{html}");
        assert!(html.contains("2 version(s)"), "{html}");
        assert!(html.contains("new"), "{html}");
        assert!(
            html.contains("&quot;old&lt;b&gt;&quot;"),
            "escaped diff: {html}"
        );
        q.insert("pk".to_owned(), "{\"id\": \"x\"}".to_owned());
        let html = section.render(&q).await.unwrap();
        assert!(html.contains("class=\"bad\""), "{html}");
        let timeline = section.render(&HashMap::new()).await.unwrap();
        assert!(timeline.contains("row-history"), "{timeline}");
    }

    bdc_testsupport::both_backends!(row_history_page);
}
