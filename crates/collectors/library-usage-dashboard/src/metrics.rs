//! The dashboard's metrics: pure computation over what the other
//! collectors stored (no database, no clock: `today` is an input), so the
//! same inputs give the same [`DashboardData`] byte for byte.
//!
//! Dating a use: a repository's use of a library is dated by the
//! repository's creation date (`created_at`, else the day boost-usage first
//! saw it); "last use" is the newest push (`pushed_at`, else last seen) of a
//! repository that still includes the library. Gone header uses (removed
//! from the file) and gone repositories do not count.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

/// Weights of the activity score.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Weights {
    pub derivative: f64,
    pub regression: f64,
    pub momentum: f64,
}

impl Default for Weights {
    fn default() -> Self {
        Weights {
            derivative: 0.4,
            regression: 0.3,
            momentum: 0.3,
        }
    }
}

/// Smoothing factor of the momentum (newest year change weighs `ALPHA`,
/// the one before `ALPHA·(1−ALPHA)`, …).
pub const MOMENTUM_ALPHA: f64 = 0.5;

/// A repository as the metrics need it.
#[derive(Debug, Clone, PartialEq)]
pub struct RepoIn {
    pub full_name: String,
    pub stars: u64,
    pub created: Option<NaiveDate>,
    pub pushed: Option<NaiveDate>,
    pub first_seen: Option<NaiveDate>,
    pub last_seen: Option<NaiveDate>,
    pub uses_boost: bool,
    pub boost_version: Option<String>,
    pub gone: bool,
}

/// One current header use.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageIn {
    pub repo: String,
    pub header: String,
    pub library: String,
}

/// A catalog library.
#[derive(Debug, Clone, PartialEq)]
pub struct LibraryIn {
    pub key: String,
    pub name: Option<String>,
}

/// A commit of a library's repository.
#[derive(Debug, Clone, PartialEq)]
pub struct CommitIn {
    pub at: DateTime<Utc>,
    pub files_changed: u64,
    pub author: String,
}

/// Everything the metrics are computed from.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    pub today: Option<NaiveDate>,
    /// Star threshold of "repositories using it" (stars > threshold).
    pub stars_min: u64,
    pub weights: Weights,
    pub repos: Vec<RepoIn>,
    pub usages: Vec<UsageIn>,
    pub libraries: Vec<LibraryIn>,
    /// C++ repositories created per year: (year, all, over the threshold).
    pub cpp_per_year: Vec<(i32, u64, u64)>,
    /// Releases with their dates, any order (`boost-1.86.0` or `1.86.0`).
    pub releases: Vec<(String, DateTime<Utc>)>,
    /// Library → the libraries it includes (`None`: not known).
    pub dependencies: Option<BTreeMap<String, BTreeSet<String>>>,
    /// Library → commits of its repository (`None`: no git history).
    pub commits: Option<BTreeMap<String, Vec<CommitIn>>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct YearValue {
    pub year: i32,
    pub repos: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeaderCount {
    pub header: String,
    pub repos: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Consumer {
    pub library: String,
    /// 1: includes it directly; 2: through one other library; …
    pub depth: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReleaseContribution {
    pub release: String,
    pub commits: u64,
    pub files_changed: u64,
    pub authors: u64,
}

/// Per-library metrics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LibraryMetrics {
    pub key: String,
    pub name: String,
    /// Repositories including it, any stars.
    pub repos_total: u64,
    /// Those with more than `stars_min` stars.
    pub repos_starred: u64,
    /// Repositories created in the last five years (this one included).
    pub usage_last_5_years: u64,
    pub usage_earlier: u64,
    pub first_use: Option<String>,
    pub last_use: Option<String>,
    pub average_stars: f64,
    pub headers: Vec<HeaderCount>,
    pub usage_per_year: Vec<YearValue>,
    pub activity_score: f64,
    pub internal_consumers: Vec<Consumer>,
    pub contributions: Vec<ReleaseContribution>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CppYear {
    pub year: i32,
    pub all: u64,
    pub starred: u64,
    pub using_boost: u64,
    /// `using_boost / starred` in percent (`None` when `starred` is 0).
    pub share_percent: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionCount {
    pub version: String,
    pub detected: u64,
    /// Repositories without a detected version, guessed from their
    /// creation date (the newest release out by then).
    pub guessed: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopRepo {
    pub full_name: String,
    pub stars: u64,
    pub created: Option<String>,
    pub boost_version: Option<String>,
    pub libraries: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Overview {
    pub repos_tracked: u64,
    pub repos_using_boost: u64,
    pub header_uses: u64,
    pub libraries_in_catalog: u64,
    pub libraries_used: u64,
    pub libraries_never_used: u64,
}

/// What the dashboard shows (written as `dashboard_data.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DashboardData {
    pub generated_on: String,
    pub stars_min: u64,
    pub weights: Weights,
    pub overview: Overview,
    /// By activity score, highest first (ties by key).
    pub libraries: Vec<LibraryMetrics>,
    pub boost_repos_per_year: Vec<YearValue>,
    pub cpp_repos_per_year: Vec<CppYear>,
    pub versions: Vec<VersionCount>,
    pub top_repos: Vec<TopRepo>,
    pub never_used: Vec<String>,
    pub internal_consumers_available: bool,
    pub contributions_available: bool,
    pub notes: Vec<String>,
}

/// Round to 4 decimals (stable JSON).
pub fn round4(v: f64) -> f64 {
    if v.is_finite() {
        (v * 10_000.0).round() / 10_000.0
    } else {
        0.0
    }
}

/// Last value minus the one before (0 with fewer than two values).
pub fn derivative(y: &[f64]) -> f64 {
    match y {
        [.., a, b] => b - a,
        _ => 0.0,
    }
}

/// Least-squares slope of `y` over 0, 1, 2, … (0 with fewer than two values).
pub fn regression_slope(y: &[f64]) -> f64 {
    let n = y.len();
    if n < 2 {
        return 0.0;
    }
    let nf = n as f64;
    let mean_x = (nf - 1.0) / 2.0;
    let mean_y = y.iter().sum::<f64>() / nf;
    let mut num = 0.0;
    let mut den = 0.0;
    for (i, v) in y.iter().enumerate() {
        let dx = i as f64 - mean_x;
        num += dx * (v - mean_y);
        den += dx * dx;
    }
    if den == 0.0 { 0.0 } else { num / den }
}

/// Exponentially weighted mean of the year-over-year changes, newest
/// weighted most (weights `α(1−α)^k`, normalised to sum to 1).
pub fn momentum(y: &[f64], alpha: f64) -> f64 {
    if y.len() < 2 {
        return 0.0;
    }
    let diffs: Vec<f64> = y.windows(2).map(|w| w[1] - w[0]).collect();
    let mut num = 0.0;
    let mut den = 0.0;
    let mut w = alpha;
    for d in diffs.iter().rev() {
        num += w * d;
        den += w;
        w *= 1.0 - alpha;
    }
    if den == 0.0 { 0.0 } else { num / den }
}

/// The activity score of a yearly usage series (oldest year first):
/// `(w_d·derivative + w_r·slope + w_m·momentum) · log10(total + 1)`.
pub fn activity_score(yearly: &[f64], total: u64, w: &Weights) -> f64 {
    let trend = w.derivative * derivative(yearly)
        + w.regression * regression_slope(yearly)
        + w.momentum * momentum(yearly, MOMENTUM_ALPHA);
    trend * ((total as f64) + 1.0).log10()
}

/// Who includes each library, transitively: library → consumers with the
/// depth of the shortest include path (breadth-first over reversed
/// dependencies; cycles are fine).
pub fn internal_consumers(
    deps: &BTreeMap<String, BTreeSet<String>>,
) -> BTreeMap<String, Vec<Consumer>> {
    let mut reverse: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (lib, uses) in deps {
        for u in uses {
            if u != lib {
                reverse.entry(u.as_str()).or_default().insert(lib.as_str());
            }
        }
    }
    let mut out = BTreeMap::new();
    for &lib in reverse.keys() {
        let mut depth: BTreeMap<&str, u32> = BTreeMap::new();
        let mut queue: VecDeque<(&str, u32)> = VecDeque::from([(lib, 0)]);
        while let Some((cur, d)) = queue.pop_front() {
            for &c in reverse.get(cur).into_iter().flatten() {
                if c != lib && !depth.contains_key(c) {
                    depth.insert(c, d + 1);
                    queue.push_back((c, d + 1));
                }
            }
        }
        let mut v: Vec<Consumer> = depth
            .into_iter()
            .map(|(l, d)| Consumer {
                library: l.to_owned(),
                depth: d,
            })
            .collect();
        v.sort_by(|a, b| {
            a.depth
                .cmp(&b.depth)
                .then_with(|| a.library.cmp(&b.library))
        });
        out.insert(lib.to_owned(), v);
    }
    out
}

/// Commits and files changed between consecutive releases: release R
/// gets the commits after the previous release's date up to R's date.
/// Commits after the newest release are left out.
pub fn contributions(
    releases: &[(String, DateTime<Utc>)],
    commits: &[CommitIn],
) -> Vec<ReleaseContribution> {
    let mut rel: Vec<&(String, DateTime<Utc>)> = releases.iter().collect();
    rel.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
    let mut out = Vec::with_capacity(rel.len());
    let mut prev: Option<DateTime<Utc>> = None;
    for (name, at) in rel {
        let mut c = ReleaseContribution {
            release: name.clone(),
            commits: 0,
            files_changed: 0,
            authors: 0,
        };
        let mut authors = BTreeSet::new();
        for commit in commits {
            if commit.at <= *at && prev.is_none_or(|p| commit.at > p) {
                c.commits += 1;
                c.files_changed += commit.files_changed;
                authors.insert(commit.author.to_ascii_lowercase());
            }
        }
        c.authors = authors.len() as u64;
        out.push(c);
        prev = Some(*at);
    }
    out
}

/// `boost-1.86.0` / `1.86.0` / `1_86_0` / `1.86` → `1.86.0`; `None` when
/// it is not a Boost version.
pub fn normalize_version(v: &str) -> Option<String> {
    let v = v.trim();
    let v = v.strip_prefix("boost-").unwrap_or(v);
    let v = v.strip_prefix("boost_").unwrap_or(v);
    let parts: Vec<&str> = v.split(['.', '_']).collect();
    let nums: Option<Vec<u64>> = parts.iter().map(|p| p.parse::<u64>().ok()).collect();
    match nums.as_deref() {
        Some([1, minor]) => Some(format!("1.{minor}.0")),
        Some([1, minor, patch]) => Some(format!("1.{minor}.{patch}")),
        _ => None,
    }
}

fn version_key(v: &str) -> (u64, u64, u64, String) {
    let nums: Vec<u64> = v
        .split('.')
        .map(|p| p.parse().unwrap_or(u64::MAX))
        .collect();
    (
        nums.first().copied().unwrap_or(u64::MAX),
        nums.get(1).copied().unwrap_or(u64::MAX),
        nums.get(2).copied().unwrap_or(u64::MAX),
        v.to_owned(),
    )
}

fn date_text(d: Option<NaiveDate>) -> Option<String> {
    d.map(|d| d.format("%Y-%m-%d").to_string())
}

/// Compute everything.
pub fn compute(inp: &Inputs) -> DashboardData {
    let today = inp
        .today
        .unwrap_or_else(|| NaiveDate::from_ymd_opt(2000, 1, 1).unwrap_or_default());
    let this_year = today.year();
    let live: HashMap<&str, &RepoIn> = inp
        .repos
        .iter()
        .filter(|r| !r.gone)
        .map(|r| (r.full_name.as_str(), r))
        .collect();
    // library → repo → headers; repo → libraries.
    let mut lib_repos: BTreeMap<&str, BTreeMap<&str, BTreeSet<&str>>> = BTreeMap::new();
    let mut repo_libs: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    let mut header_uses = 0u64;
    for u in &inp.usages {
        if !live.contains_key(u.repo.as_str()) {
            continue;
        }
        header_uses += 1;
        lib_repos
            .entry(u.library.as_str())
            .or_default()
            .entry(u.repo.as_str())
            .or_default()
            .insert(u.header.as_str());
        repo_libs
            .entry(u.repo.as_str())
            .or_default()
            .insert(u.library.as_str());
    }
    let created_of = |r: &RepoIn| r.created.or(r.first_seen);
    let last_of = |r: &RepoIn| r.pushed.or(r.last_seen);

    let mut names: BTreeMap<&str, String> = BTreeMap::new();
    for l in &inp.libraries {
        names.insert(
            l.key.as_str(),
            l.name.clone().unwrap_or_else(|| l.key.clone()),
        );
    }
    // Every library: the catalog's and any used one (incl. `unknown`).
    let mut keys: BTreeSet<&str> = names.keys().copied().collect();
    keys.extend(lib_repos.keys().copied());

    let consumers = inp.dependencies.as_ref().map(internal_consumers);
    let mut libraries = Vec::with_capacity(keys.len());
    for key in keys {
        let empty = BTreeMap::new();
        let repos = lib_repos.get(key).unwrap_or(&empty);
        let mut per_year: BTreeMap<i32, u64> = BTreeMap::new();
        let mut headers: BTreeMap<&str, u64> = BTreeMap::new();
        let (mut starred, mut last5, mut earlier, mut stars_sum) = (0u64, 0u64, 0u64, 0u64);
        let mut first: Option<NaiveDate> = None;
        let mut last: Option<NaiveDate> = None;
        for (repo, hs) in repos {
            let Some(r) = live.get(repo) else { continue };
            for h in hs {
                *headers.entry(h).or_insert(0) += 1;
            }
            stars_sum += r.stars;
            if r.stars > inp.stars_min {
                starred += 1;
            }
            if let Some(c) = created_of(r) {
                *per_year.entry(c.year()).or_insert(0) += 1;
                if c.year() > this_year - 5 {
                    last5 += 1;
                } else {
                    earlier += 1;
                }
                first = Some(first.map_or(c, |f| f.min(c)));
            } else {
                earlier += 1;
            }
            if let Some(l) = last_of(r) {
                last = Some(last.map_or(l, |x| x.max(l)));
            }
        }
        let total = repos.len() as u64;
        let series: Vec<f64> = match per_year.keys().next() {
            Some(&y0) => (y0..=this_year.max(y0))
                .map(|y| per_year.get(&y).copied().unwrap_or(0) as f64)
                .collect(),
            None => Vec::new(),
        };
        let mut headers: Vec<HeaderCount> = headers
            .into_iter()
            .map(|(h, n)| HeaderCount {
                header: h.to_owned(),
                repos: n,
            })
            .collect();
        headers.sort_by(|a, b| b.repos.cmp(&a.repos).then_with(|| a.header.cmp(&b.header)));
        let contributions = inp
            .commits
            .as_ref()
            .and_then(|c| c.get(key))
            .map(|c| contributions(&inp.releases, c))
            .unwrap_or_default();
        libraries.push(LibraryMetrics {
            key: key.to_owned(),
            name: names.get(key).cloned().unwrap_or_else(|| key.to_owned()),
            repos_total: total,
            repos_starred: starred,
            usage_last_5_years: last5,
            usage_earlier: earlier,
            first_use: date_text(first),
            last_use: date_text(last),
            average_stars: if total == 0 {
                0.0
            } else {
                round4(stars_sum as f64 / total as f64)
            },
            headers,
            usage_per_year: per_year
                .into_iter()
                .map(|(year, repos)| YearValue { year, repos })
                .collect(),
            activity_score: round4(activity_score(&series, total, &inp.weights)),
            internal_consumers: consumers
                .as_ref()
                .and_then(|c| c.get(key))
                .cloned()
                .unwrap_or_default(),
            contributions,
        });
    }
    libraries.sort_by(|a, b| {
        b.activity_score
            .total_cmp(&a.activity_score)
            .then_with(|| b.repos_total.cmp(&a.repos_total))
            .then_with(|| a.key.cmp(&b.key))
    });

    // Overall.
    let using: Vec<&RepoIn> = inp
        .repos
        .iter()
        .filter(|r| !r.gone && (r.uses_boost || repo_libs.contains_key(r.full_name.as_str())))
        .collect();
    let mut boost_per_year: BTreeMap<i32, u64> = BTreeMap::new();
    let mut boost_starred_per_year: BTreeMap<i32, u64> = BTreeMap::new();
    for r in &using {
        if let Some(c) = created_of(r) {
            *boost_per_year.entry(c.year()).or_insert(0) += 1;
            if r.stars > inp.stars_min {
                *boost_starred_per_year.entry(c.year()).or_insert(0) += 1;
            }
        }
    }
    let cpp_repos_per_year = inp
        .cpp_per_year
        .iter()
        .map(|&(year, all, starred)| {
            let using_boost = boost_starred_per_year.get(&year).copied().unwrap_or(0);
            CppYear {
                year,
                all,
                starred,
                using_boost,
                share_percent: (starred > 0)
                    .then(|| round4(using_boost as f64 * 100.0 / starred as f64)),
            }
        })
        .collect();

    // Versions: detected, else guessed from the creation date.
    let mut releases: Vec<(String, NaiveDate)> = inp
        .releases
        .iter()
        .filter_map(|(r, at)| normalize_version(r).map(|v| (v, at.date_naive())))
        .collect();
    releases.sort_by(|a, b| {
        a.1.cmp(&b.1)
            .then_with(|| version_key(&a.0).cmp(&version_key(&b.0)))
    });
    let mut versions: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for r in &using {
        match r.boost_version.as_deref().and_then(normalize_version) {
            Some(v) => versions.entry(v).or_default().0 += 1,
            None => {
                let guess = created_of(r)
                    .and_then(|c| releases.iter().rev().find(|(_, at)| *at <= c))
                    .map(|(v, _)| v.clone())
                    .unwrap_or_else(|| "unknown".into());
                versions.entry(guess).or_default().1 += 1;
            }
        }
    }
    let mut versions: Vec<VersionCount> = versions
        .into_iter()
        .map(|(version, (detected, guessed))| VersionCount {
            version,
            detected,
            guessed,
        })
        .collect();
    versions.sort_by_key(|v| version_key(&v.version));

    let mut top: Vec<&RepoIn> = using.clone();
    top.sort_by(|a, b| {
        b.stars
            .cmp(&a.stars)
            .then_with(|| a.full_name.cmp(&b.full_name))
    });
    let top_repos = top
        .into_iter()
        .take(20)
        .map(|r| TopRepo {
            full_name: r.full_name.clone(),
            stars: r.stars,
            created: date_text(r.created),
            boost_version: r.boost_version.clone(),
            libraries: repo_libs
                .get(r.full_name.as_str())
                .map_or(0, |l| l.len() as u64),
        })
        .collect();

    let never_used: Vec<String> = inp
        .libraries
        .iter()
        .map(|l| l.key.clone())
        .filter(|k| !lib_repos.contains_key(k.as_str()))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let catalog: BTreeSet<&str> = inp.libraries.iter().map(|l| l.key.as_str()).collect();
    let mut notes = Vec::new();
    if inp.dependencies.is_none() {
        notes.push(
            "Internal consumers are not shown: the newest boost-libraries release has no dependency scan (it was read with `--source github`; run `bdc run boost-libraries` from git)."
                .to_owned(),
        );
    }
    if inp.commits.is_none() {
        notes.push(
            "Contributions per release are not shown: no git-history of a Boost library repository is stored."
                .to_owned(),
        );
    }
    DashboardData {
        generated_on: today.format("%Y-%m-%d").to_string(),
        stars_min: inp.stars_min,
        weights: inp.weights,
        overview: Overview {
            repos_tracked: live.len() as u64,
            repos_using_boost: using.len() as u64,
            header_uses,
            libraries_in_catalog: catalog.len() as u64,
            libraries_used: catalog
                .iter()
                .filter(|k| lib_repos.contains_key(*k))
                .count() as u64,
            libraries_never_used: never_used.len() as u64,
        },
        libraries,
        boost_repos_per_year: boost_per_year
            .into_iter()
            .map(|(year, repos)| YearValue { year, repos })
            .collect(),
        cpp_repos_per_year,
        versions,
        top_repos,
        never_used,
        internal_consumers_available: inp.dependencies.is_some(),
        contributions_available: inp.commits.is_some(),
        notes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn trend_parts() {
        assert!(close(derivative(&[1.0, 4.0, 6.0]), 2.0));
        assert!(close(derivative(&[5.0]), 0.0));
        assert!(close(regression_slope(&[1.0, 2.0, 3.0, 4.0]), 1.0));
        assert!(close(regression_slope(&[4.0, 4.0, 4.0]), 0.0));
        assert!(close(regression_slope(&[]), 0.0));
        // diffs 1, 3: weights 0.25 (older), 0.5 (newest) → (0.25 + 1.5) / 0.75
        assert!(close(momentum(&[0.0, 1.0, 4.0], 0.5), 1.75 / 0.75));
        assert!(close(momentum(&[2.0], 0.5), 0.0));
    }

    #[test]
    fn activity_score_combines_weights_and_scale() {
        let w = Weights::default();
        // Linear growth by 2 per year: every part is 2.
        let s = activity_score(&[0.0, 2.0, 4.0, 6.0], 99, &w);
        assert!(close(s, 2.0 * (0.4 + 0.3 + 0.3) * 2.0), "{s}");
        // Flat usage: no activity whatever the total.
        assert!(close(activity_score(&[3.0, 3.0, 3.0], 1000, &w), 0.0));
        // Declining usage scores negative.
        assert!(activity_score(&[6.0, 4.0, 1.0], 11, &w) < 0.0);
        // Zero total: log10(1) = 0.
        assert!(close(activity_score(&[0.0, 5.0], 0, &w), 0.0));
        // Only the derivative weighted.
        let only_d = Weights {
            derivative: 1.0,
            regression: 0.0,
            momentum: 0.0,
        };
        assert!(close(activity_score(&[1.0, 1.0, 10.0], 9, &only_d), 9.0));
    }

    #[test]
    fn consumers_are_transitive_with_depth() {
        let mut deps: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut add = |a: &str, b: &[&str]| {
            deps.insert(a.into(), b.iter().map(|s| (*s).to_owned()).collect());
        };
        add("asio", &["system", "config"]);
        add("beast", &["asio", "config"]);
        add("system", &["config"]);
        add("config", &["config"]);
        let c = internal_consumers(&deps);
        let names = |k: &str| {
            c[k].iter()
                .map(|x| (x.library.clone(), x.depth))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names("config"),
            vec![
                ("asio".into(), 1),
                ("beast".into(), 1),
                ("system".into(), 1)
            ]
        );
        assert_eq!(
            names("system"),
            vec![("asio".into(), 1), ("beast".into(), 2)]
        );
        assert!(!c.contains_key("beast"));
    }

    #[test]
    fn contributions_split_by_release() {
        let t = |y, m, d| Utc.with_ymd_and_hms(y, m, d, 0, 0, 0).unwrap();
        let releases = vec![
            ("boost-1.2.0".to_owned(), t(2021, 1, 1)),
            ("boost-1.1.0".to_owned(), t(2020, 1, 1)),
        ];
        let c = |at, f, a: &str| CommitIn {
            at,
            files_changed: f,
            author: a.into(),
        };
        let commits = vec![
            c(t(2019, 5, 1), 2, "a@x"),
            c(t(2020, 6, 1), 3, "a@x"),
            c(t(2020, 7, 1), 1, "B@x"),
            c(t(2020, 8, 1), 1, "b@x"),
            c(t(2022, 1, 1), 9, "c@x"),
        ];
        let r = contributions(&releases, &commits);
        assert_eq!(r.len(), 2);
        assert_eq!(
            (
                r[0].release.as_str(),
                r[0].commits,
                r[0].files_changed,
                r[0].authors
            ),
            ("boost-1.1.0", 1, 2, 1)
        );
        assert_eq!(
            (
                r[1].release.as_str(),
                r[1].commits,
                r[1].files_changed,
                r[1].authors
            ),
            ("boost-1.2.0", 3, 5, 2)
        );
    }

    #[test]
    fn versions_normalize() {
        assert_eq!(normalize_version("boost-1.86.0").as_deref(), Some("1.86.0"));
        assert_eq!(normalize_version("1_74_0").as_deref(), Some("1.74.0"));
        assert_eq!(normalize_version("1.70").as_deref(), Some("1.70.0"));
        assert_eq!(normalize_version("develop"), None);
        assert_eq!(normalize_version("2.0"), None);
    }

    fn d(s: &str) -> Option<NaiveDate> {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()
    }

    fn repo(name: &str, stars: u64, created: &str, version: Option<&str>) -> RepoIn {
        RepoIn {
            full_name: name.into(),
            stars,
            created: d(created),
            pushed: d(created),
            first_seen: d("2026-01-01"),
            last_seen: d("2026-01-01"),
            uses_boost: true,
            boost_version: version.map(str::to_owned),
            gone: false,
        }
    }

    #[test]
    fn compute_small_world() {
        let u = |r: &str, h: &str, l: &str| UsageIn {
            repo: r.into(),
            header: h.into(),
            library: l.into(),
        };
        let inp = Inputs {
            today: d("2026-06-01"),
            stars_min: 10,
            weights: Weights::default(),
            repos: vec![
                repo("a/one", 100, "2019-03-01", Some("1.70.0")),
                repo("b/two", 5, "2024-02-01", None),
                repo("c/three", 50, "2025-05-01", None),
                RepoIn {
                    gone: true,
                    ..repo("d/gone", 999, "2025-01-01", None)
                },
            ],
            usages: vec![
                u("a/one", "boost/asio.hpp", "asio"),
                u("a/one", "boost/asio/ip/tcp.hpp", "asio"),
                u("b/two", "boost/asio.hpp", "asio"),
                u("c/three", "boost/json.hpp", "json"),
                u("c/three", "boost/asio.hpp", "asio"),
                u("d/gone", "boost/json.hpp", "json"),
            ],
            libraries: vec![
                LibraryIn {
                    key: "asio".into(),
                    name: Some("Asio".into()),
                },
                LibraryIn {
                    key: "json".into(),
                    name: Some("JSON".into()),
                },
                LibraryIn {
                    key: "yap".into(),
                    name: None,
                },
            ],
            cpp_per_year: vec![(2025, 1000, 40), (2026, 10, 0)],
            releases: vec![
                (
                    "boost-1.80.0".into(),
                    Utc.with_ymd_and_hms(2022, 8, 10, 0, 0, 0).unwrap(),
                ),
                (
                    "boost-1.85.0".into(),
                    Utc.with_ymd_and_hms(2024, 4, 15, 0, 0, 0).unwrap(),
                ),
            ],
            dependencies: None,
            commits: None,
        };
        let data = compute(&inp);
        assert_eq!(data.overview.repos_tracked, 3);
        assert_eq!(data.overview.repos_using_boost, 3);
        assert_eq!(data.overview.header_uses, 5);
        assert_eq!(data.overview.libraries_used, 2);
        assert_eq!(data.never_used, vec!["yap".to_owned()]);
        let asio = data.libraries.iter().find(|l| l.key == "asio").unwrap();
        assert_eq!(asio.name, "Asio");
        assert_eq!(asio.repos_total, 3);
        assert_eq!(asio.repos_starred, 2);
        assert_eq!(asio.usage_last_5_years, 2);
        assert_eq!(asio.usage_earlier, 1);
        assert_eq!(asio.first_use.as_deref(), Some("2019-03-01"));
        assert_eq!(asio.last_use.as_deref(), Some("2025-05-01"));
        assert!(close(asio.average_stars, round4(155.0 / 3.0)));
        assert_eq!(asio.headers[0].header, "boost/asio.hpp");
        assert_eq!(asio.headers[0].repos, 3);
        assert_eq!(
            asio.usage_per_year,
            vec![
                YearValue {
                    year: 2019,
                    repos: 1
                },
                YearValue {
                    year: 2024,
                    repos: 1
                },
                YearValue {
                    year: 2025,
                    repos: 1
                }
            ]
        );
        let json = data.libraries.iter().find(|l| l.key == "json").unwrap();
        assert_eq!(json.repos_total, 1, "the gone repository does not count");
        // 2025: 40 starred C++ repos, one Boost user over 10 stars.
        assert_eq!(data.cpp_repos_per_year[0].using_boost, 1);
        assert_eq!(data.cpp_repos_per_year[0].share_percent, Some(2.5));
        assert_eq!(data.cpp_repos_per_year[1].share_percent, None);
        // Versions: one detected, two guessed from creation dates.
        let v: Vec<(String, u64, u64)> = data
            .versions
            .iter()
            .map(|v| (v.version.clone(), v.detected, v.guessed))
            .collect();
        assert_eq!(
            v,
            vec![
                ("1.70.0".into(), 1, 0),
                ("1.80.0".into(), 0, 1),
                ("1.85.0".into(), 0, 1)
            ]
        );
        assert_eq!(data.top_repos[0].full_name, "a/one");
        assert_eq!(data.top_repos[0].libraries, 1);
        assert_eq!(data.notes.len(), 2);
        assert_eq!(compute(&inp), data, "deterministic");
    }
}
