//! Resolution: profiles → identities (automatic rules, stored manual
//! decisions, the declarative file, locks), and the queries and manual
//! operations behind `bdc identities`.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use bdc_storage::{QueryContext, Storage, StorageError, Tx, now, on_pool, on_tx};

use crate::HubError;
use crate::normalize::{is_bot_name, is_shared_noreply, name_key, normalize_email, profile_keys};
use crate::rules::Rules;

/// One stored profile with its addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub id: i64,
    pub source: String,
    pub source_id: String,
    pub display_name: Option<String>,
    pub login: Option<String>,
    pub activity_source: Option<String>,
    pub actor: Option<String>,
    pub is_bot: bool,
    pub identity_id: Option<i64>,
    pub emails: Vec<String>,
}

impl Profile {
    /// `source:source_id`.
    pub fn reference(&self) -> String {
        format!("{}:{}", self.source, self.source_id)
    }
}

/// One identity with its profiles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub id: i64,
    pub display_name: Option<String>,
    pub is_bot: bool,
    pub locked: bool,
    pub profiles: Vec<Profile>,
}

/// What a resolution did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResolveCounts {
    pub profiles: u64,
    pub identities: u64,
    /// Identities that are not bots.
    pub people: u64,
    pub bots: u64,
    /// Profiles whose identity changed (or was first assigned).
    pub reassigned: u64,
    pub created: u64,
    pub removed: u64,
    /// References in the declarative file that matched no profile.
    pub unresolved: u64,
}

type IdentityRow = (i64, Option<String>, bool, bool);
/// `(kind, a_source, a_source_id, b_source, b_source_id)`.
type DecisionRow = (String, String, String, Option<String>, Option<String>);

struct Loaded {
    profiles: Vec<Profile>,
    identities: BTreeMap<i64, IdentityRow>,
    decisions: Vec<DecisionRow>,
}

type ProfileRow = (
    i64,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    bool,
    Option<i64>,
);

const PROFILE_COLS: &str =
    "id, source, source_id, display_name, login, activity_source, actor, is_bot, identity_id";

fn to_profile(r: ProfileRow) -> Profile {
    Profile {
        id: r.0,
        source: r.1,
        source_id: r.2,
        display_name: r.3,
        login: r.4,
        activity_source: r.5,
        actor: r.6,
        is_bot: r.7,
        identity_id: r.8,
        emails: Vec::new(),
    }
}

fn attach_emails(profiles: &mut [Profile], emails: Vec<(String, String, String)>) {
    let pos: HashMap<(&str, &str), usize> = profiles
        .iter()
        .enumerate()
        .map(|(i, p)| ((p.source.as_str(), p.source_id.as_str()), i))
        .collect();
    let mut add: Vec<(usize, String)> = Vec::new();
    for (s, id, e) in emails {
        if let Some(i) = pos.get(&(s.as_str(), id.as_str())) {
            add.push((*i, e));
        }
    }
    for (i, e) in add {
        profiles[i].emails.push(e);
    }
}

async fn load(tx: &mut Tx) -> Result<Loaded, StorageError> {
    on_tx!(tx, t => {
        let rows: Vec<ProfileRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {PROFILE_COLS} FROM profiles ORDER BY id"
        )))
        .fetch_all(&mut **t)
        .await
        .ctx("reading profiles")?;
        let emails: Vec<(String, String, String)> =
            sqlx::query_as("SELECT source, source_id, email FROM profile_emails ORDER BY email")
                .fetch_all(&mut **t)
                .await
                .ctx("reading profile addresses")?;
        let ids: Vec<IdentityRow> =
            sqlx::query_as("SELECT id, display_name, is_bot, locked FROM identities")
                .fetch_all(&mut **t)
                .await
                .ctx("reading identities")?;
        let decisions = sqlx::query_as(
            "SELECT kind, a_source, a_source_id, b_source, b_source_id FROM identity_decisions ORDER BY id",
        )
        .fetch_all(&mut **t)
        .await
        .ctx("reading identity decisions")?;
        let mut profiles: Vec<Profile> = rows.into_iter().map(to_profile).collect();
        attach_emails(&mut profiles, emails);
        Ok(Loaded {
            profiles,
            identities: ids.into_iter().map(|r| (r.0, r)).collect(),
            decisions,
        })
    })
}

struct Dsu(Vec<usize>);

impl Dsu {
    fn find(&mut self, mut x: usize) -> usize {
        while self.0[x] != x {
            self.0[x] = self.0[self.0[x]];
            x = self.0[x];
        }
        x
    }
    fn union(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb {
            let (lo, hi) = if ra < rb { (ra, rb) } else { (rb, ra) };
            self.0[hi] = lo;
        }
    }
}

/// Lookup of references over loaded profiles.
struct Index<'a> {
    by_ref: HashMap<String, usize>,
    by_email: HashMap<String, Vec<usize>>,
    by_login: HashMap<String, Vec<usize>>,
    profiles: &'a [Profile],
}

impl<'a> Index<'a> {
    fn new(profiles: &'a [Profile]) -> Self {
        let mut ix = Index {
            by_ref: HashMap::new(),
            by_email: HashMap::new(),
            by_login: HashMap::new(),
            profiles,
        };
        for (i, p) in profiles.iter().enumerate() {
            ix.by_ref.insert(p.reference(), i);
            for e in &p.emails {
                if let Some(n) = normalize_email(e) {
                    ix.by_email.entry(n).or_default().push(i);
                }
            }
            if let Some(l) = &p.login {
                ix.by_login.entry(l.to_lowercase()).or_default().push(i);
            }
        }
        ix
    }

    /// Profiles a reference names: `source:source_id`, an address, a login.
    fn find(&self, r: &str) -> Vec<usize> {
        let r = r.trim();
        if let Some(i) = self.by_ref.get(r) {
            return vec![*i];
        }
        if let Some(n) = normalize_email(r)
            && let Some(v) = self.by_email.get(&n)
        {
            let mut v = v.clone();
            v.dedup();
            return v;
        }
        let _ = self.profiles;
        self.by_login
            .get(&r.to_lowercase())
            .cloned()
            .unwrap_or_default()
    }
}

fn profile_is_bot(p: &Profile, bots: &[String]) -> bool {
    p.login.as_deref().is_some_and(|l| is_bot_name(l, bots))
        || p.display_name
            .as_deref()
            .is_some_and(|n| is_bot_name(n, bots))
        || p.emails.iter().any(|e| {
            is_bot_name(e, bots)
                || normalize_email(e)
                    .is_some_and(|n| is_shared_noreply(&n) || is_bot_name(&n, bots))
        })
}

fn identity_name(members: &[&Profile]) -> Option<String> {
    // A GitHub profile's name, else the most frequent name, else a login.
    let gh = members
        .iter()
        .filter(|p| p.source == "github")
        .find_map(|p| p.display_name.clone().or_else(|| p.login.clone()));
    if gh.is_some() {
        return gh;
    }
    let mut freq: BTreeMap<&str, usize> = BTreeMap::new();
    for p in members {
        if let Some(n) = p.display_name.as_deref() {
            *freq.entry(n).or_default() += 1;
        }
    }
    freq.into_iter()
        .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(a.0)))
        .map(|(n, _)| n.to_owned())
        .or_else(|| members.iter().find_map(|p| p.login.clone()))
        .or_else(|| members.first().map(|p| p.source_id.clone()))
}

/// Re-resolve every profile into identities, in one write transaction
/// carrying `storage`'s actor. Locked identities keep their profiles and
/// get no new ones from automatic rules.
pub async fn resolve(storage: &Storage, rules: &Rules) -> Result<ResolveCounts, HubError> {
    let mut tx = storage.begin().await?;
    let loaded = load(&mut tx).await?;
    let counts = resolve_loaded(&mut tx, loaded, rules).await?;
    tx.commit().await?;
    Ok(counts)
}

async fn resolve_loaded(
    tx: &mut Tx,
    loaded: Loaded,
    rules: &Rules,
) -> Result<ResolveCounts, HubError> {
    let Loaded {
        profiles,
        identities,
        decisions,
    } = loaded;
    let n = profiles.len();
    let locked = |p: &Profile| {
        p.identity_id
            .and_then(|id| identities.get(&id))
            .is_some_and(|r| r.3)
    };
    let ix = Index::new(&profiles);
    let mut counts = ResolveCounts {
        profiles: n as u64,
        ..ResolveCounts::default()
    };

    // Manual decisions: stored ones in order, then the file's. A split
    // cancels earlier merges of that profile and turns its automatic keys off.
    let mut split: BTreeSet<usize> = BTreeSet::new();
    let mut edges: Vec<(usize, usize)> = Vec::new();
    let apply_split = |i: usize, split: &mut BTreeSet<usize>, edges: &mut Vec<(usize, usize)>| {
        split.insert(i);
        edges.retain(|(a, b)| *a != i && *b != i);
    };
    for (kind, a_s, a_id, b_s, b_id) in &decisions {
        let a = ix.by_ref.get(&format!("{a_s}:{a_id}")).copied();
        match (kind.as_str(), a) {
            ("split", Some(a)) => apply_split(a, &mut split, &mut edges),
            ("merge", Some(a)) => {
                let b = match (b_s, b_id) {
                    (Some(s), Some(id)) => ix.by_ref.get(&format!("{s}:{id}")).copied(),
                    _ => None,
                };
                if let Some(b) = b {
                    edges.push((a, b));
                }
            }
            _ => {}
        }
    }
    for (line, refs) in &rules.merges {
        let mut all: Vec<usize> = Vec::new();
        for r in refs {
            let found = ix.find(r);
            if found.is_empty() {
                tracing::warn!(line, reference = %r, "identities file: merge reference matches no profile (yet)");
                counts.unresolved += 1;
            }
            all.extend(found);
        }
        for w in all.windows(2) {
            edges.push((w[0], w[1]));
        }
    }
    for (line, r) in &rules.splits {
        let found = ix.find(r);
        if found.is_empty() {
            tracing::warn!(line, reference = %r, "identities file: split reference matches no profile (yet)");
            counts.unresolved += 1;
        }
        for i in found {
            apply_split(i, &mut split, &mut edges);
        }
    }

    // Automatic rules: profiles sharing a key are one person.
    let mut dsu = Dsu((0..n).collect());
    let mut first: HashMap<String, usize> = HashMap::new();
    for (i, p) in profiles.iter().enumerate() {
        if locked(p) || split.contains(&i) {
            continue;
        }
        for k in profile_keys(&p.source, p.login.as_deref(), &p.emails) {
            match first.get(&k) {
                Some(j) => dsu.union(*j, i),
                None => {
                    first.insert(k, i);
                }
            }
        }
    }
    for (a, b) in edges {
        if !locked(&profiles[a]) && !locked(&profiles[b]) {
            dsu.union(a, b);
        }
    }

    // Clusters: locked identities as they are; others by union-find root.
    let mut clusters: BTreeMap<(bool, i64, usize), Vec<usize>> = BTreeMap::new();
    for (i, p) in profiles.iter().enumerate() {
        let key = match p.identity_id {
            Some(id) if locked(p) => (true, id, 0),
            _ => (false, 0, dsu.find(i)),
        };
        clusters.entry(key).or_default().push(i);
    }
    let mut claimed: BTreeSet<i64> = identities.values().filter(|r| r.3).map(|r| r.0).collect();
    let stamp = now();
    let mut assign: Vec<(i64, i64)> = Vec::new();
    let mut bot_flags: Vec<(i64, bool)> = Vec::new();
    let mut meta: Vec<(i64, Option<String>, bool)> = Vec::new();
    let mut created: Vec<(Vec<usize>, Option<String>, bool)> = Vec::new();
    for ((is_locked, locked_id, _), members) in &clusters {
        let refs: Vec<&Profile> = members.iter().map(|i| &profiles[*i]).collect();
        let bots: Vec<bool> = refs
            .iter()
            .map(|p| profile_is_bot(p, &rules.bots))
            .collect();
        for (p, b) in refs.iter().zip(&bots) {
            if p.is_bot != *b {
                bot_flags.push((p.id, *b));
            }
        }
        let is_bot = bots.iter().any(|b| *b);
        let name = identity_name(&refs);
        if *is_locked {
            meta.push((*locked_id, name, is_bot));
            continue;
        }
        // Keep the identity most members already have (ties: oldest).
        let mut votes: BTreeMap<i64, usize> = BTreeMap::new();
        for p in &refs {
            if let Some(id) = p.identity_id
                && identities.contains_key(&id)
                && !claimed.contains(&id)
            {
                *votes.entry(id).or_default() += 1;
            }
        }
        let keep = votes
            .into_iter()
            .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
            .map(|(id, _)| id);
        match keep {
            Some(id) => {
                claimed.insert(id);
                for p in &refs {
                    if p.identity_id != Some(id) {
                        assign.push((p.id, id));
                    }
                }
                meta.push((id, name, is_bot));
            }
            None => created.push((members.clone(), name, is_bot)),
        }
    }

    on_tx!(tx, t => {
        for (id, b) in &bot_flags {
            sqlx::query("UPDATE profiles SET is_bot = $1 WHERE id = $2")
                .bind(*b)
                .bind(*id)
                .execute(&mut **t)
                .await
                .ctx("marking bot profiles")?;
        }
        for (members, name, is_bot) in &created {
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO identities (display_name, is_bot, locked, created_at, updated_at)
                 VALUES ($1, $2, FALSE, $3, $3) RETURNING id",
            )
            .bind(name.as_deref())
            .bind(*is_bot)
            .bind(stamp)
            .fetch_one(&mut **t)
            .await
            .ctx("creating an identity")?;
            counts.created += 1;
            for i in members {
                assign.push((profiles[*i].id, id));
            }
        }
        for (pid, iid) in &assign {
            sqlx::query("UPDATE profiles SET identity_id = $1, updated_at = $2 WHERE id = $3")
                .bind(*iid)
                .bind(stamp)
                .bind(*pid)
                .execute(&mut **t)
                .await
                .ctx("assigning profiles to identities")?;
        }
        for (id, name, is_bot) in &meta {
            let changed = identities
                .get(id)
                .is_none_or(|r| r.1 != *name || r.2 != *is_bot);
            if changed {
                sqlx::query("UPDATE identities SET display_name = $1, is_bot = $2, updated_at = $3 WHERE id = $4")
                    .bind(name.as_deref())
                    .bind(*is_bot)
                    .bind(stamp)
                    .bind(*id)
                    .execute(&mut **t)
                    .await
                    .ctx("updating identities")?;
            }
        }
        let removed = sqlx::query(
            "DELETE FROM identities WHERE locked = FALSE
             AND NOT EXISTS (SELECT 1 FROM profiles p WHERE p.identity_id = identities.id)",
        )
        .execute(&mut **t)
        .await
        .ctx("removing empty identities")?;
        counts.removed = removed.rows_affected();
    });
    counts.reassigned = assign.len() as u64;
    counts.identities = clusters.len() as u64;
    counts.bots =
        meta.iter().filter(|m| m.2).count() as u64 + created.iter().filter(|c| c.2).count() as u64;
    counts.people = counts.identities - counts.bots;
    Ok(counts)
}

/// What a CLI reference names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Identity(i64),
    Profiles(Vec<Profile>),
}

async fn all_profiles(storage: &Storage) -> Result<Vec<Profile>, StorageError> {
    on_pool!(storage, p => {
        let rows: Vec<ProfileRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {PROFILE_COLS} FROM profiles ORDER BY id"
        )))
        .fetch_all(p)
        .await
        .ctx("reading profiles")?;
        let emails: Vec<(String, String, String)> =
            sqlx::query_as("SELECT source, source_id, email FROM profile_emails ORDER BY email")
                .fetch_all(p)
                .await
                .ctx("reading profile addresses")?;
        let mut profiles: Vec<Profile> = rows.into_iter().map(to_profile).collect();
        attach_emails(&mut profiles, emails);
        Ok(profiles)
    })
}

/// Resolve `<id|email|login|source:source_id>` to the identity ids it names.
pub async fn find_identities(storage: &Storage, r: &str) -> Result<Vec<i64>, HubError> {
    let r = r.trim();
    if let Ok(id) = r.parse::<i64>() {
        let found: Option<i64> = on_pool!(storage, p => sqlx::query_scalar(
            "SELECT id FROM identities WHERE id = $1"
        ).bind(id).fetch_optional(p).await.ctx("reading an identity"))?;
        return Ok(found.into_iter().collect());
    }
    let profiles = all_profiles(storage).await?;
    let ix = Index::new(&profiles);
    let mut ids: Vec<i64> = ix
        .find(r)
        .into_iter()
        .filter_map(|i| profiles[i].identity_id)
        .collect();
    ids.sort_unstable();
    ids.dedup();
    Ok(ids)
}

/// The one identity `r` names (errors when none or several).
pub async fn find_identity(storage: &Storage, r: &str) -> Result<i64, HubError> {
    let ids = find_identities(storage, r).await?;
    match ids.as_slice() {
        [id] => Ok(*id),
        [] => Err(HubError::NotFound(r.to_owned())),
        many => Err(HubError::Ambiguous {
            reference: r.to_owned(),
            candidates: many.iter().map(|i| format!("identity {i}")).collect(),
        }),
    }
}

/// One identity with its profiles.
pub async fn get_identity(storage: &Storage, id: i64) -> Result<Option<Identity>, HubError> {
    let row: Option<IdentityRow> = on_pool!(storage, p => sqlx::query_as(
        "SELECT id, display_name, is_bot, locked FROM identities WHERE id = $1"
    ).bind(id).fetch_optional(p).await.ctx("reading an identity"))?;
    let Some(row) = row else {
        return Ok(None);
    };
    let profiles = profiles_of(storage, &[id]).await?;
    Ok(Some(Identity {
        id: row.0,
        display_name: row.1,
        is_bot: row.2,
        locked: row.3,
        profiles,
    }))
}

async fn profiles_of(storage: &Storage, ids: &[i64]) -> Result<Vec<Profile>, HubError> {
    let mut out = Vec::new();
    for id in ids {
        let (rows, emails): (Vec<ProfileRow>, Vec<(String, String, String)>) = on_pool!(storage, p => {
            let rows = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {PROFILE_COLS} FROM profiles WHERE identity_id = $1 ORDER BY id"
            ))).bind(*id).fetch_all(p).await.ctx("reading an identity's profiles")?;
            let emails = sqlx::query_as(
                "SELECT e.source, e.source_id, e.email FROM profile_emails e
                 JOIN profiles p ON p.source = e.source AND p.source_id = e.source_id
                 WHERE p.identity_id = $1 ORDER BY e.email"
            ).bind(*id).fetch_all(p).await.ctx("reading an identity's addresses")?;
            (rows, emails)
        });
        let mut ps: Vec<Profile> = rows.into_iter().map(to_profile).collect();
        attach_emails(&mut ps, emails);
        out.extend(ps);
    }
    Ok(out)
}

/// One row of `bdc identities list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentitySummary {
    pub id: i64,
    pub display_name: Option<String>,
    pub is_bot: bool,
    pub locked: bool,
    pub profiles: i64,
    pub sources: String,
}

/// Identities, largest first (bots only with `include_bots`).
pub async fn list_identities(
    storage: &Storage,
    include_bots: bool,
    limit: u32,
) -> Result<Vec<IdentitySummary>, HubError> {
    type Row = (i64, Option<String>, bool, bool, i64);
    let rows: Vec<Row> = on_pool!(storage, p => sqlx::query_as(
        "SELECT i.id, i.display_name, i.is_bot, i.locked, COUNT(p.id) AS n
         FROM identities i LEFT JOIN profiles p ON p.identity_id = i.id
         WHERE ($1 OR i.is_bot = FALSE)
         GROUP BY i.id, i.display_name, i.is_bot, i.locked
         ORDER BY n DESC, i.id LIMIT $2"
    ).bind(include_bots).bind(i64::from(limit)).fetch_all(p).await.ctx("listing identities"))?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let sources: Vec<String> = on_pool!(storage, p => sqlx::query_scalar(
            "SELECT DISTINCT source FROM profiles WHERE identity_id = $1 ORDER BY source"
        ).bind(r.0).fetch_all(p).await.ctx("listing identity sources"))?;
        out.push(IdentitySummary {
            id: r.0,
            display_name: r.1,
            is_bot: r.2,
            locked: r.3,
            profiles: r.4,
            sources: sources.join(","),
        });
    }
    Ok(out)
}

/// Number of identities that are people (not bots).
pub async fn people_count(storage: &Storage) -> Result<u64, HubError> {
    let n: i64 = on_pool!(storage, p => sqlx::query_scalar(
        "SELECT COUNT(*) FROM identities WHERE is_bot = FALSE"
    ).fetch_one(p).await.ctx("counting people"))?;
    Ok(u64::try_from(n).unwrap_or(0))
}

async fn identity_locked(storage: &Storage, id: i64) -> Result<bool, HubError> {
    let l: Option<bool> = on_pool!(storage, p => sqlx::query_scalar(
        "SELECT locked FROM identities WHERE id = $1"
    ).bind(id).fetch_optional(p).await.ctx("reading an identity"))?;
    l.ok_or_else(|| HubError::NotFound(format!("identity {id}")))
}

async fn record_decision(
    storage: &Storage,
    kind: &str,
    a: &Profile,
    b: Option<&Profile>,
    origin: &str,
) -> Result<(), HubError> {
    let mut tx = storage.begin().await?;
    let by = storage.actor_json().map(str::to_owned);
    on_tx!(&mut tx, t => {
        sqlx::query(
            "INSERT INTO identity_decisions (kind, a_source, a_source_id, b_source, b_source_id, origin, created_by, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(kind)
        .bind(a.source.as_str())
        .bind(a.source_id.as_str())
        .bind(b.map(|p| p.source.as_str()))
        .bind(b.map(|p| p.source_id.as_str()))
        .bind(origin)
        .bind(by)
        .bind(now())
        .execute(&mut **t)
        .await
        .ctx("recording an identity decision")?;
    });
    tx.commit().await?;
    Ok(())
}

/// Merge the identities `a` and `b` name (a stored decision, then a
/// resolution). Returns the surviving identity id.
pub async fn merge(storage: &Storage, a: &str, b: &str, rules: &Rules) -> Result<i64, HubError> {
    let ia = find_identity(storage, a).await?;
    let ib = find_identity(storage, b).await?;
    if ia == ib {
        return Err(HubError::Invalid(format!(
            "{a} and {b} are already identity {ia}"
        )));
    }
    for id in [ia, ib] {
        if identity_locked(storage, id).await? {
            return Err(HubError::Locked(id));
        }
    }
    let pa = profiles_of(storage, &[ia]).await?;
    let pb = profiles_of(storage, &[ib]).await?;
    let (Some(ra), Some(rb)) = (pa.first(), pb.first()) else {
        return Err(HubError::Invalid(
            "an identity without profiles cannot be merged".into(),
        ));
    };
    record_decision(storage, "merge", ra, Some(rb), "cli").await?;
    resolve(storage, rules).await?;
    let after: Option<Option<i64>> = on_pool!(storage, p => sqlx::query_scalar(
        "SELECT identity_id FROM profiles WHERE id = $1"
    ).bind(ra.id).fetch_optional(p).await.ctx("reading a profile"))?;
    Ok(after.flatten().unwrap_or(ia))
}

/// The one profile `r` names.
pub async fn find_profile(storage: &Storage, r: &str) -> Result<Profile, HubError> {
    let profiles = all_profiles(storage).await?;
    let ix = Index::new(&profiles);
    let found = ix.find(r);
    match found.as_slice() {
        [i] => Ok(profiles[*i].clone()),
        [] => Err(HubError::NotFound(r.to_owned())),
        many => Err(HubError::Ambiguous {
            reference: r.to_owned(),
            candidates: many.iter().map(|i| profiles[*i].reference()).collect(),
        }),
    }
}

/// Split one profile off into its own identity (stored; automatic rules
/// no longer merge it). Returns its new identity id.
pub async fn split(storage: &Storage, r: &str, rules: &Rules) -> Result<Option<i64>, HubError> {
    let p = find_profile(storage, r).await?;
    if let Some(id) = p.identity_id
        && identity_locked(storage, id).await?
    {
        return Err(HubError::Locked(id));
    }
    record_decision(storage, "split", &p, None, "cli").await?;
    resolve(storage, rules).await?;
    let after: Option<Option<i64>> = on_pool!(storage, q => sqlx::query_scalar(
        "SELECT identity_id FROM profiles WHERE id = $1"
    ).bind(p.id).fetch_optional(q).await.ctx("reading a profile"))?;
    Ok(after.flatten())
}

/// Lock or unlock an identity (automatic rules leave a locked one alone).
pub async fn set_locked(storage: &Storage, id: i64, locked: bool) -> Result<(), HubError> {
    identity_locked(storage, id).await?;
    let mut tx = storage.begin().await?;
    on_tx!(&mut tx, t => {
        sqlx::query("UPDATE identities SET locked = $1, updated_at = $2 WHERE id = $3")
            .bind(locked)
            .bind(now())
            .bind(id)
            .execute(&mut **t)
            .await
            .ctx("locking an identity")?;
    });
    tx.commit().await?;
    Ok(())
}

/// Name-only candidates: groups of distinct non-bot identities whose
/// names are equal once case and punctuation are ignored. Never merged
/// automatically; for a person to confirm with `bdc identities merge`.
pub async fn suggest(storage: &Storage) -> Result<Vec<(String, Vec<i64>)>, HubError> {
    let rows: Vec<(i64, Option<String>)> = on_pool!(storage, p => sqlx::query_as(
        "SELECT DISTINCT i.id, p.display_name FROM identities i JOIN profiles p ON p.identity_id = i.id
         WHERE i.is_bot = FALSE AND p.display_name IS NOT NULL"
    ).fetch_all(p).await.ctx("reading names"))?;
    let mut by: BTreeMap<String, BTreeSet<i64>> = BTreeMap::new();
    for (id, name) in rows {
        if let Some(n) = name {
            let k = name_key(&n);
            if k.contains(' ') {
                by.entry(k).or_default().insert(id);
            }
        }
    }
    Ok(by
        .into_iter()
        .filter(|(_, ids)| ids.len() > 1)
        .map(|(k, ids)| (k, ids.into_iter().collect()))
        .collect())
}

/// `(activity source_system, actor)` pairs of an identity's profiles.
pub async fn actors_of(storage: &Storage, id: i64) -> Result<Vec<(String, String)>, HubError> {
    let rows: Vec<(Option<String>, Option<String>)> = on_pool!(storage, p => sqlx::query_as(
        "SELECT DISTINCT activity_source, actor FROM profiles WHERE identity_id = $1"
    ).bind(id).fetch_all(p).await.ctx("reading an identity's actors"))?;
    Ok(rows
        .into_iter()
        .filter_map(|(s, a)| Some((s?, a?)))
        .collect())
}
