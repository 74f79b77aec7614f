//! Pure matching rules: email normalisation, GitHub noreply addresses,
//! bot detection and the merge keys of a profile.

/// Domain of GitHub's per-user noreply addresses.
pub const GITHUB_NOREPLY_DOMAIN: &str = "users.noreply.github.com";

/// Undo the mailing-list obfuscation `user at example.com`,
/// `user (at) example (dot) com`, `user [at] example.com`.
fn deobfuscate(s: &str) -> Option<String> {
    let lower = s.to_lowercase();
    let mut out = lower.clone();
    for pat in [" (at) ", " [at] ", " at ", "(at)", "[at]"] {
        if out.contains(pat) {
            out = out.replacen(pat, "@", 1);
            break;
        }
    }
    if !out.contains('@') {
        return None;
    }
    for pat in [" (dot) ", " [dot] ", " dot ", "(dot)", "[dot]"] {
        out = out.replace(pat, ".");
    }
    Some(out)
}

/// The matching form of an address: trimmed, `<>` removed, obfuscation
/// undone, lower-cased, `+tag` removed from the local part (except on
/// GitHub noreply addresses, where `ID+login` is the identity).
/// `None` when it is not an address.
pub fn normalize_email(raw: &str) -> Option<String> {
    let s = raw
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim();
    if s.is_empty() {
        return None;
    }
    let s = if s.contains('@') {
        s.to_lowercase()
    } else {
        deobfuscate(s)?
    };
    let (local, domain) = s.rsplit_once('@')?;
    let local = local.trim();
    let domain = domain.trim().trim_end_matches('.');
    if local.is_empty()
        || domain.is_empty()
        || !domain.contains('.')
        || local.contains(char::is_whitespace)
        || domain.contains(char::is_whitespace)
        || domain.contains('@')
    {
        return None;
    }
    let local = match local.split_once('+') {
        Some((base, _)) if !base.is_empty() && domain != GITHUB_NOREPLY_DOMAIN => base,
        _ => local,
    };
    Some(format!("{local}@{domain}"))
}

/// The GitHub login of a (normalised) noreply address
/// `ID+login@users.noreply.github.com` or `login@users.noreply.github.com`.
pub fn github_noreply_login(norm: &str) -> Option<String> {
    let (local, domain) = norm.rsplit_once('@')?;
    if domain != GITHUB_NOREPLY_DOMAIN {
        return None;
    }
    let login = match local.split_once('+') {
        Some((_, login)) => login,
        None => local,
    };
    (!login.is_empty()).then(|| login.to_lowercase())
}

/// A shared no-reply address (`noreply@…`, `no-reply@…`, `…@noreply.…`),
/// not a person's. GitHub's per-user noreply addresses are not shared.
pub fn is_shared_noreply(norm: &str) -> bool {
    let Some((local, domain)) = norm.rsplit_once('@') else {
        return false;
    };
    if domain == GITHUB_NOREPLY_DOMAIN {
        return false;
    }
    let l = local.replace(['-', '_', '.'], "");
    l.contains("noreply")
        || l == "donotreply"
        || l == "mailerdaemon"
        || domain.starts_with("noreply.")
        || domain.starts_with("no-reply.")
}

/// Whether a login or name is a bot's: `…[bot]`, or one of `configured`
/// (case-insensitive; compared with logins, names and addresses).
pub fn is_bot_name(s: &str, configured: &[String]) -> bool {
    let l = s.trim().to_lowercase();
    if l.is_empty() {
        return false;
    }
    l.ends_with("[bot]") || configured.iter().any(|c| c.trim().to_lowercase() == l)
}

/// Merge keys of one profile: `email:<normalised>` for every personal
/// address, `github:<login>` for a GitHub account and for a GitHub noreply
/// address. Names never produce keys.
pub fn profile_keys(source: &str, login: Option<&str>, emails: &[String]) -> Vec<String> {
    let mut keys = Vec::new();
    if source == "github"
        && let Some(l) = login.map(str::trim).filter(|l| !l.is_empty())
    {
        keys.push(format!("github:{}", l.to_lowercase()));
    }
    for e in emails {
        let Some(n) = normalize_email(e) else {
            continue;
        };
        if let Some(login) = github_noreply_login(&n) {
            keys.push(format!("github:{login}"));
        } else if !is_shared_noreply(&n) {
            keys.push(format!("email:{n}"));
        }
    }
    keys.sort();
    keys.dedup();
    keys
}

/// A name compared for `--suggest` (lower case, letters and digits, single spaces).
pub fn name_key(name: &str) -> String {
    name.to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert_eq!(
            normalize_email(" <Alice+Boost@Example.COM> ").as_deref(),
            Some("alice@example.com")
        );
        assert_eq!(
            normalize_email("alice at example.com").as_deref(),
            Some("alice@example.com")
        );
        assert_eq!(
            normalize_email("alice (at) example (dot) com").as_deref(),
            Some("alice@example.com")
        );
        assert_eq!(normalize_email("Alice Example"), None);
        assert_eq!(normalize_email("a@localhost"), None);
        assert_eq!(
            normalize_email("123+Octo@users.noreply.github.com").as_deref(),
            Some("123+octo@users.noreply.github.com")
        );
    }

    #[test]
    fn noreply() {
        assert_eq!(
            github_noreply_login("123+octo@users.noreply.github.com").as_deref(),
            Some("octo")
        );
        assert_eq!(
            github_noreply_login("octo@users.noreply.github.com").as_deref(),
            Some("octo")
        );
        assert!(is_shared_noreply("noreply@github.com"));
        assert!(is_shared_noreply("no-reply@lists.example.org"));
        assert!(!is_shared_noreply("123+octo@users.noreply.github.com"));
        assert!(!is_shared_noreply("alice@example.com"));
    }

    #[test]
    fn keys_and_bots() {
        let k = profile_keys(
            "git",
            None,
            &[
                "1+Octo@users.noreply.github.com".into(),
                "noreply@github.com".into(),
                "a+x@b.org".into(),
            ],
        );
        assert_eq!(k, vec!["email:a@b.org", "github:octo"]);
        assert!(is_bot_name("dependabot[bot]", &[]));
        assert!(is_bot_name("Boost-CI", &["boost-ci".into()]));
        assert!(!is_bot_name("alice", &[]));
        assert_eq!(name_key("  John  A. Smith "), "john a smith");
    }
}
