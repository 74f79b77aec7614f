//! The Markdown export: one file per channel and month,
//! `<repo>/<guild>/<channel>/<YYYY-MM>.md` (names made path-safe; the id
//! when a name is empty), messages in time order with author, time,
//! content, reply reference and attachments as links. Files are rewritten
//! from the database (so deterministically) for the months a run touched,
//! then `git add` + `git commit` (only when something changed) and, unless
//! told not to, `git push origin HEAD`, with the git CLI.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use bdc_storage::Storage;
use chrono::SecondsFormat;

use crate::error::{DiscordError, storage_err};
use crate::export::Attachment;
use crate::store::{self, MonthMessage};

/// A path-safe form of `name` (`fallback` when nothing is left).
pub fn slug(name: &str, fallback: &str) -> String {
    let s: String = name
        .trim()
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let s = s.trim_matches(|c| c == '-' || c == '.').to_owned();
    if s.is_empty() { fallback.to_owned() } else { s }
}

fn link(guild: &str, channel: &str, id: &str) -> String {
    format!("https://discord.com/channels/{guild}/{channel}/{id}")
}

/// The text of one month file.
pub fn render(
    guild_id: &str,
    guild_name: &str,
    channel_id: &str,
    channel_name: &str,
    month: &str,
    messages: &[MonthMessage],
) -> String {
    let mut out = format!(
        "# #{channel_name} — {month}\n\nServer: {guild_name} ({guild_id}) · channel {channel_id} · {} messages\n",
        messages.iter().filter(|m| !m.deleted).count()
    );
    for m in messages.iter().filter(|m| !m.deleted) {
        let author = match (&m.author_nickname, &m.author_name) {
            (Some(n), Some(u)) if n != u => format!("{n} (@{u})"),
            (_, Some(u)) => format!("@{u}"),
            _ => format!("user {}", m.author_id),
        };
        out.push_str(&format!(
            "\n## {author} — {}\n\n",
            m.created_at.to_rfc3339_opts(SecondsFormat::Secs, true)
        ));
        out.push_str(&format!(
            "[message {}]({}){}\n",
            m.id,
            link(guild_id, channel_id, &m.id),
            m.edited_at
                .map(|t| format!(" · edited {}", t.to_rfc3339_opts(SecondsFormat::Secs, true)))
                .unwrap_or_default()
        ));
        if let Some(r) = &m.reply_to_id {
            out.push_str(&format!(
                "\n> reply to [message {r}]({})\n",
                link(guild_id, channel_id, r)
            ));
        }
        let content = m.content.trim_end();
        if !content.is_empty() {
            out.push('\n');
            out.push_str(content);
            out.push('\n');
        }
        let atts: Vec<Attachment> = serde_json::from_str(&m.attachments).unwrap_or_default();
        if !atts.is_empty() {
            out.push('\n');
            for a in &atts {
                let name = a
                    .file_name
                    .clone()
                    .or_else(|| a.id.clone())
                    .unwrap_or_else(|| "attachment".into());
                match &a.url {
                    Some(u) => out.push_str(&format!("- attachment: [{name}]({u})\n")),
                    None => out.push_str(&format!("- attachment: {name}\n")),
                }
            }
        }
    }
    out
}

fn io_err(path: &Path, action: &str) -> impl FnOnce(std::io::Error) -> DiscordError {
    let path = path.to_path_buf();
    let action = action.to_owned();
    move |e| DiscordError::Export {
        path,
        action,
        message: e.to_string(),
    }
}

/// Rewrite the month files of `touched` (channel id, month) under `repo`,
/// then commit (and push when `push`). Returns the files whose text
/// changed.
pub async fn export(
    storage: &Storage,
    repo: &Path,
    touched: &BTreeSet<(String, String)>,
    push: bool,
) -> Result<u64, DiscordError> {
    if touched.is_empty() {
        return Ok(0);
    }
    let mut changed: Vec<PathBuf> = Vec::new();
    for (channel_id, month) in touched {
        let Some((guild_id, guild_name, channel_name)) = store::channel_names(storage, channel_id)
            .await
            .map_err(storage_err("reading a discord channel"))?
        else {
            continue;
        };
        let messages = store::month_messages(storage, channel_id, month)
            .await
            .map_err(storage_err("reading a discord month"))?;
        let guild_name = guild_name.unwrap_or_else(|| guild_id.clone());
        let rel = PathBuf::from(slug(&guild_name, &guild_id))
            .join(slug(&channel_name, channel_id))
            .join(format!("{month}.md"));
        let text = render(
            &guild_id,
            &guild_name,
            channel_id,
            &channel_name,
            month,
            &messages,
        );
        let path = repo.join(&rel);
        if std::fs::read_to_string(&path).ok().as_deref() == Some(text.as_str()) {
            continue;
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io_err(dir, "creating the folder"))?;
        }
        std::fs::write(&path, text).map_err(io_err(&path, "writing"))?;
        changed.push(rel);
    }
    let n = changed.len() as u64;
    tracing::info!(
        collector = crate::live::NAME,
        repo = %repo.display(),
        months = touched.len(),
        changed = n,
        "discord Markdown export written"
    );
    if n > 0 {
        let repo = repo.to_path_buf();
        tokio::task::spawn_blocking(move || commit_and_push(&repo, &changed, push))
            .await
            .map_err(|e| DiscordError::Join(e.to_string()))??;
    }
    Ok(n)
}

fn git(repo: &Path, args: &[&str]) -> Result<std::process::Output, DiscordError> {
    Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(args)
        .output()
        .map_err(io_err(repo, &format!("running git {}", args.join(" "))))
}

fn git_ok(repo: &Path, args: &[&str]) -> Result<(), DiscordError> {
    let out = git(repo, args)?;
    if out.status.success() {
        return Ok(());
    }
    Err(DiscordError::Export {
        path: repo.to_path_buf(),
        action: format!("git {}", args.first().copied().unwrap_or("")),
        message: format!(
            "{}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ),
    })
}

/// `git add` the files, commit when the index changed, push when asked.
pub fn commit_and_push(repo: &Path, files: &[PathBuf], push: bool) -> Result<bool, DiscordError> {
    let mut add: Vec<String> = vec!["add".into(), "--".into()];
    add.extend(files.iter().map(|f| f.display().to_string()));
    let add: Vec<&str> = add.iter().map(String::as_str).collect();
    git_ok(repo, &add)?;
    let staged = git(repo, &["diff", "--cached", "--quiet"])?;
    if staged.status.success() {
        return Ok(false);
    }
    let has_identity = git(repo, &["config", "user.email"])?.status.success();
    let message = format!("discord: update {} month file(s)", files.len());
    let mut commit: Vec<&str> = Vec::new();
    if !has_identity {
        commit.extend(["-c", "user.name=bdc", "-c", "user.email=bdc@localhost"]);
    }
    commit.extend(["commit", "--quiet", "-m", message.as_str()]);
    git_ok(repo, &commit)?;
    if push {
        git_ok(repo, &["push", "--quiet", "origin", "HEAD"])?;
        tracing::info!(collector = crate::live::NAME, repo = %repo.display(), "discord Markdown export pushed");
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        assert_eq!(slug("general chat/#1", "9"), "general-chat--1");
        assert_eq!(slug("  ", "9"), "9");
        assert_eq!(slug("..", "9"), "9");
        assert_eq!(slug("C++ Alliance", "9"), "C---Alliance");
    }
}
