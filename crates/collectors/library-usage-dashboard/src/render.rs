//! Outputs of [`DashboardData`]: `dashboard_data.json`, one CSV per table,
//! the Markdown report, and HTML (askama templates, inline-SVG charts from
//! `bdc_dashboard::svg`, no JavaScript): fragments shared by the static
//! site and `bdc serve`'s `/dashboard/usage` pages.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use askama::Template;
use bdc_dashboard::svg;

use crate::metrics::{DashboardData, LibraryMetrics};

/// How pages link to each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Links {
    /// The static site: `index.html`, `libraries/<slug>.html`.
    SiteIndex,
    SiteLibrary,
    /// `bdc serve`: `/dashboard/usage`, `/dashboard/usage/<key>`.
    Serve,
}

impl Links {
    fn library(self, key: &str) -> String {
        match self {
            Links::SiteIndex => format!("libraries/{}.html", slug(key)),
            Links::SiteLibrary => format!("{}.html", slug(key)),
            Links::Serve => format!("/dashboard/usage/{key}"),
        }
    }
    fn index(self) -> &'static str {
        match self {
            Links::SiteIndex => "index.html",
            Links::SiteLibrary => "../index.html",
            Links::Serve => "/dashboard/usage",
        }
    }
}

/// File name of a library's page: its key with anything but
/// `[a-z0-9_.-]` (e.g. the `/` of `numeric/conversion`) as `-`.
pub fn slug(key: &str) -> String {
    key.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-' {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

/// `(year, value)` points for every year from the first to `end` (or the
/// last, if later), gaps as 0, so charts show quiet years too.
fn dense_years(values: &[crate::metrics::YearValue], end: Option<i32>) -> Vec<(String, f64)> {
    let (Some(first), Some(last)) = (
        values.iter().map(|v| v.year).min(),
        values.iter().map(|v| v.year).max(),
    ) else {
        return Vec::new();
    };
    let end = end.map_or(last, |e| e.max(last));
    (first..=end)
        .map(|y| {
            let v = values.iter().find(|v| v.year == y).map_or(0, |v| v.repos);
            (y.to_string(), v as f64)
        })
        .collect()
}

fn year_of(date: &str) -> Option<i32> {
    date.get(..4).and_then(|y| y.parse().ok())
}

fn opt(v: &Option<String>) -> String {
    v.clone().unwrap_or_else(|| "—".into())
}

fn num(v: f64) -> String {
    format!("{v:.2}")
}

struct LibRow {
    href: String,
    name: String,
    repos: u64,
    starred: u64,
    last5: u64,
    earlier: u64,
    first: String,
    last: String,
    stars: String,
    score: String,
}

#[derive(Template)]
#[template(path = "usage_index.html")]
struct IndexFragment {
    generated_on: String,
    stars_min: u64,
    overview: Vec<(&'static str, u64)>,
    chart_boost_years: String,
    chart_cpp_years: String,
    chart_share: String,
    cpp_rows: Vec<(i32, u64, u64, u64, String)>,
    chart_versions: String,
    versions: Vec<(String, u64, u64)>,
    libraries: Vec<LibRow>,
    top_repos: Vec<(String, u64, String, String, u64)>,
    never_used: Vec<String>,
    notes: Vec<String>,
}

#[derive(Template)]
#[template(path = "usage_library.html")]
struct LibraryFragment {
    back: String,
    facts: Vec<(&'static str, String)>,
    chart_years: String,
    headers: Vec<(String, u64)>,
    consumers_available: bool,
    consumers: Vec<(String, u32)>,
    chart_contributions: String,
    contributions: Vec<(String, u64, u64, u64)>,
}

#[derive(Template)]
#[template(path = "site_page.html")]
struct SitePage<'a> {
    title: &'a str,
    home: &'a str,
    body: &'a str,
    generated_on: &'a str,
}

/// The overview page's body.
pub fn index_fragment(data: &DashboardData, links: Links) -> Result<String, askama::Error> {
    let o = &data.overview;
    let years: Vec<String> = data
        .cpp_repos_per_year
        .iter()
        .map(|c| c.year.to_string())
        .collect();
    IndexFragment {
        generated_on: data.generated_on.clone(),
        stars_min: data.stars_min,
        overview: vec![
            ("Repositories tracked", o.repos_tracked),
            ("Repositories using Boost", o.repos_using_boost),
            ("Header uses", o.header_uses),
            ("Libraries in the catalog", o.libraries_in_catalog),
            ("Libraries used", o.libraries_used),
            ("Libraries never used", o.libraries_never_used),
        ],
        chart_boost_years: svg::bar_chart(
            "Boost-using repositories per creation year",
            "boost-years",
            &dense_years(&data.boost_repos_per_year, None),
        ),
        chart_cpp_years: svg::line_chart(
            "Starred C++ repositories and those using Boost, per creation year",
            "cpp-years",
            &years,
            &[
                (
                    "starred C++".into(),
                    data.cpp_repos_per_year
                        .iter()
                        .map(|c| c.starred as f64)
                        .collect(),
                ),
                (
                    "using Boost".into(),
                    data.cpp_repos_per_year
                        .iter()
                        .map(|c| c.using_boost as f64)
                        .collect(),
                ),
            ],
        ),
        chart_share: svg::bar_chart(
            "Share of starred C++ repositories using Boost (%)",
            "boost-share",
            &data
                .cpp_repos_per_year
                .iter()
                .map(|c| (c.year.to_string(), c.share_percent.unwrap_or(0.0)))
                .collect::<Vec<_>>(),
        ),
        cpp_rows: data
            .cpp_repos_per_year
            .iter()
            .map(|c| {
                (
                    c.year,
                    c.all,
                    c.starred,
                    c.using_boost,
                    c.share_percent
                        .map(|s| format!("{s:.2} %"))
                        .unwrap_or_else(|| "—".into()),
                )
            })
            .collect(),
        chart_versions: svg::bar_chart(
            "Repositories per Boost version (detected + guessed)",
            "versions",
            &data
                .versions
                .iter()
                .map(|v| (v.version.clone(), (v.detected + v.guessed) as f64))
                .collect::<Vec<_>>(),
        ),
        versions: data
            .versions
            .iter()
            .map(|v| (v.version.clone(), v.detected, v.guessed))
            .collect(),
        libraries: data
            .libraries
            .iter()
            .map(|l| LibRow {
                href: links.library(&l.key),
                name: if l.name == l.key {
                    l.key.clone()
                } else {
                    format!("{} ({})", l.name, l.key)
                },
                repos: l.repos_total,
                starred: l.repos_starred,
                last5: l.usage_last_5_years,
                earlier: l.usage_earlier,
                first: opt(&l.first_use),
                last: opt(&l.last_use),
                stars: num(l.average_stars),
                score: num(l.activity_score),
            })
            .collect(),
        top_repos: data
            .top_repos
            .iter()
            .map(|r| {
                (
                    r.full_name.clone(),
                    r.stars,
                    opt(&r.created),
                    opt(&r.boost_version),
                    r.libraries,
                )
            })
            .collect(),
        never_used: data.never_used.clone(),
        notes: data.notes.clone(),
    }
    .render()
}

/// One library's page body.
pub fn library_fragment(
    data: &DashboardData,
    l: &LibraryMetrics,
    links: Links,
) -> Result<String, askama::Error> {
    LibraryFragment {
        back: links.index().to_owned(),
        facts: vec![
            ("Key", l.key.clone()),
            ("Name", l.name.clone()),
            ("Repositories using it", l.repos_total.to_string()),
            (
                "… with more than the star threshold",
                l.repos_starred.to_string(),
            ),
            (
                "Usage in the last 5 years",
                l.usage_last_5_years.to_string(),
            ),
            ("Earlier usage", l.usage_earlier.to_string()),
            ("First use", opt(&l.first_use)),
            ("Last use", opt(&l.last_use)),
            ("Average stars", num(l.average_stars)),
            ("Activity score", num(l.activity_score)),
        ],
        chart_years: svg::bar_chart(
            &format!("Repositories using {} per creation year", l.key),
            "library-years",
            &dense_years(&l.usage_per_year, year_of(&data.generated_on)),
        ),
        headers: l
            .headers
            .iter()
            .map(|h| (h.header.clone(), h.repos))
            .collect(),
        consumers_available: data.internal_consumers_available,
        consumers: l
            .internal_consumers
            .iter()
            .map(|c| (c.library.clone(), c.depth))
            .collect(),
        chart_contributions: svg::bar_chart(
            &format!("Commits to {} per release", l.key),
            "contributions",
            &l.contributions
                .iter()
                .map(|c| (c.release.clone(), c.commits as f64))
                .collect::<Vec<_>>(),
        ),
        contributions: l
            .contributions
            .iter()
            .map(|c| (c.release.clone(), c.commits, c.files_changed, c.authors))
            .collect(),
    }
    .render()
}

/// Every page of the static site: (`index.html` | `libraries/<slug>.html`, HTML).
pub fn site_pages(data: &DashboardData) -> Result<Vec<(PathBuf, String)>, askama::Error> {
    let mut out = Vec::with_capacity(data.libraries.len() + 1);
    let body = index_fragment(data, Links::SiteIndex)?;
    out.push((
        PathBuf::from("index.html"),
        SitePage {
            title: "Boost library usage",
            home: "index.html",
            body: &body,
            generated_on: &data.generated_on,
        }
        .render()?,
    ));
    for l in &data.libraries {
        let body = library_fragment(data, l, Links::SiteLibrary)?;
        let title = format!("{} ({})", l.name, l.key);
        out.push((
            PathBuf::from("libraries").join(format!("{}.html", slug(&l.key))),
            SitePage {
                title: &title,
                home: "../index.html",
                body: &body,
                generated_on: &data.generated_on,
            }
            .render()?,
        ));
    }
    Ok(out)
}

fn csv_bytes(header: &[&str], rows: Vec<Vec<String>>) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(header)?;
    for r in rows {
        w.write_record(&r)?;
    }
    w.into_inner()
        .map_err(|e| csv::Error::from(std::io::Error::other(e.to_string())))
}

/// One CSV per table: (file name, bytes).
pub fn csv_tables(data: &DashboardData) -> Result<Vec<(&'static str, Vec<u8>)>, csv::Error> {
    let s = |v: &dyn ToString| v.to_string();
    let o = |v: &Option<String>| v.clone().unwrap_or_default();
    let mut out = Vec::new();
    out.push((
        "libraries.csv",
        csv_bytes(
            &[
                "library",
                "name",
                "repos_total",
                "repos_starred",
                "usage_last_5_years",
                "usage_earlier",
                "first_use",
                "last_use",
                "average_stars",
                "activity_score",
                "headers",
            ],
            data.libraries
                .iter()
                .map(|l| {
                    vec![
                        l.key.clone(),
                        l.name.clone(),
                        s(&l.repos_total),
                        s(&l.repos_starred),
                        s(&l.usage_last_5_years),
                        s(&l.usage_earlier),
                        o(&l.first_use),
                        o(&l.last_use),
                        s(&l.average_stars),
                        s(&l.activity_score),
                        s(&l.headers.len()),
                    ]
                })
                .collect(),
        )?,
    ));
    out.push((
        "library_usage_per_year.csv",
        csv_bytes(
            &["library", "year", "repos"],
            data.libraries
                .iter()
                .flat_map(|l| {
                    l.usage_per_year
                        .iter()
                        .map(|y| vec![l.key.clone(), s(&y.year), s(&y.repos)])
                })
                .collect(),
        )?,
    ));
    out.push((
        "library_headers.csv",
        csv_bytes(
            &["library", "header", "repos"],
            data.libraries
                .iter()
                .flat_map(|l| {
                    l.headers
                        .iter()
                        .map(|h| vec![l.key.clone(), h.header.clone(), s(&h.repos)])
                })
                .collect(),
        )?,
    ));
    out.push((
        "internal_consumers.csv",
        csv_bytes(
            &["library", "consumer", "depth"],
            data.libraries
                .iter()
                .flat_map(|l| {
                    l.internal_consumers
                        .iter()
                        .map(|c| vec![l.key.clone(), c.library.clone(), s(&c.depth)])
                })
                .collect(),
        )?,
    ));
    out.push((
        "contributions_per_release.csv",
        csv_bytes(
            &["library", "release", "commits", "files_changed", "authors"],
            data.libraries
                .iter()
                .flat_map(|l| {
                    l.contributions.iter().map(|c| {
                        vec![
                            l.key.clone(),
                            c.release.clone(),
                            s(&c.commits),
                            s(&c.files_changed),
                            s(&c.authors),
                        ]
                    })
                })
                .collect(),
        )?,
    ));
    out.push((
        "boost_repos_per_year.csv",
        csv_bytes(
            &["year", "repos"],
            data.boost_repos_per_year
                .iter()
                .map(|y| vec![s(&y.year), s(&y.repos)])
                .collect(),
        )?,
    ));
    out.push((
        "cpp_repos_per_year.csv",
        csv_bytes(
            &["year", "all", "starred", "using_boost", "share_percent"],
            data.cpp_repos_per_year
                .iter()
                .map(|c| {
                    vec![
                        s(&c.year),
                        s(&c.all),
                        s(&c.starred),
                        s(&c.using_boost),
                        c.share_percent.map(|p| p.to_string()).unwrap_or_default(),
                    ]
                })
                .collect(),
        )?,
    ));
    out.push((
        "versions.csv",
        csv_bytes(
            &["version", "detected", "guessed"],
            data.versions
                .iter()
                .map(|v| vec![v.version.clone(), s(&v.detected), s(&v.guessed)])
                .collect(),
        )?,
    ));
    out.push((
        "top_repos.csv",
        csv_bytes(
            &["repo", "stars", "created", "boost_version", "libraries"],
            data.top_repos
                .iter()
                .map(|r| {
                    vec![
                        r.full_name.clone(),
                        s(&r.stars),
                        o(&r.created),
                        o(&r.boost_version),
                        s(&r.libraries),
                    ]
                })
                .collect(),
        )?,
    ));
    out.push((
        "never_used.csv",
        csv_bytes(
            &["library"],
            data.never_used.iter().map(|n| vec![n.clone()]).collect(),
        )?,
    ));
    Ok(out)
}

fn md_cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// The Markdown report: overview, top libraries, never used, version
/// distribution, counts by year and version.
pub fn markdown(data: &DashboardData) -> String {
    let o = &data.overview;
    let mut m = String::new();
    let _ = writeln!(m, "# Boost library usage report\n");
    let _ = writeln!(
        m,
        "Generated on {} (repositories over {} stars count as starred).\n",
        data.generated_on, data.stars_min
    );
    let _ = writeln!(m, "## Overview\n\n| | |\n| --- | ---: |");
    for (k, v) in [
        ("Repositories tracked", o.repos_tracked),
        ("Repositories using Boost", o.repos_using_boost),
        ("Header uses", o.header_uses),
        ("Libraries in the catalog", o.libraries_in_catalog),
        ("Libraries used", o.libraries_used),
        ("Libraries never used", o.libraries_never_used),
    ] {
        let _ = writeln!(m, "| {k} | {v} |");
    }
    let _ = writeln!(
        m,
        "\n## Top libraries\n\n| Library | Repos | Starred | Last 5 years | Earlier | First use | Last use | Avg stars | Activity |\n| --- | ---: | ---: | ---: | ---: | --- | --- | ---: | ---: |"
    );
    let mut top: Vec<&LibraryMetrics> = data
        .libraries
        .iter()
        .filter(|l| l.repos_total > 0)
        .collect();
    top.sort_by(|a, b| {
        b.repos_total
            .cmp(&a.repos_total)
            .then_with(|| a.key.cmp(&b.key))
    });
    for l in top.iter().take(20) {
        let _ = writeln!(
            m,
            "| {} | {} | {} | {} | {} | {} | {} | {:.2} | {:.2} |",
            md_cell(&l.key),
            l.repos_total,
            l.repos_starred,
            l.usage_last_5_years,
            l.usage_earlier,
            opt(&l.first_use),
            opt(&l.last_use),
            l.average_stars,
            l.activity_score
        );
    }
    let _ = writeln!(m, "\n## Never used\n");
    if data.overview.libraries_in_catalog == 0 {
        let _ = writeln!(m, "No catalog stored yet (run `boost-libraries`).");
    } else if data.never_used.is_empty() {
        let _ = writeln!(m, "Every catalog library is used.");
    } else {
        let _ = writeln!(
            m,
            "Libraries never used ({}): {}",
            data.never_used.len(),
            data.never_used
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let _ = writeln!(
        m,
        "\n## Version distribution\n\n| Version | Detected | Guessed | Total |\n| --- | ---: | ---: | ---: |"
    );
    for v in &data.versions {
        let _ = writeln!(
            m,
            "| {} | {} | {} | {} |",
            md_cell(&v.version),
            v.detected,
            v.guessed,
            v.detected + v.guessed
        );
    }
    let _ = writeln!(
        m,
        "\n## Counts by year\n\n| Year | Boost-using repos | C++ repos | Starred C++ | Starred using Boost | Share |\n| --- | ---: | ---: | ---: | ---: | ---: |"
    );
    let mut years: std::collections::BTreeSet<i32> =
        data.boost_repos_per_year.iter().map(|y| y.year).collect();
    years.extend(data.cpp_repos_per_year.iter().map(|c| c.year));
    for y in years {
        let b = data
            .boost_repos_per_year
            .iter()
            .find(|x| x.year == y)
            .map_or(0, |x| x.repos);
        let c = data.cpp_repos_per_year.iter().find(|x| x.year == y);
        let _ = writeln!(
            m,
            "| {y} | {b} | {} | {} | {} | {} |",
            c.map_or("—".into(), |c| c.all.to_string()),
            c.map_or("—".into(), |c| c.starred.to_string()),
            c.map_or("—".into(), |c| c.using_boost.to_string()),
            c.and_then(|c| c.share_percent)
                .map_or("—".into(), |p| format!("{p:.2} %")),
        );
    }
    if !data.notes.is_empty() {
        let _ = writeln!(m, "\n## Notes\n");
        for n in &data.notes {
            let _ = writeln!(m, "- {n}");
        }
    }
    m
}

/// Write `bytes` to `path` unless it already holds exactly them; through
/// a temporary file and a rename, so a crash never leaves half a file.
/// Returns whether the file was written.
pub fn write_if_changed(path: &Path, bytes: &[u8]) -> std::io::Result<bool> {
    if let Ok(old) = std::fs::read(path)
        && old == bytes
    {
        return Ok(false);
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension(format!(
        "{}.tmp",
        path.extension().and_then(|e| e.to_str()).unwrap_or("")
    ));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    Ok(true)
}
