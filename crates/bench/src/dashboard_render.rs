//! `dashboard-render` benchmark: the library usage dashboard's pure path
//! (no database) on generated data: 170 libraries × 50,000 header-use rows
//! over 10,000 repositories (17 × 5,000 over 1,000 with `--quick`).
//! Measured: computing the metrics, rendering every page of the static
//! site (index + one per library, inline-SVG charts, askama), and the
//! JSON + CSV + Markdown outputs, all in memory (nothing written).

use std::time::Instant;

use anyhow::Result;
use bdc_collector_library_usage_dashboard::metrics::{
    Inputs, LibraryIn, RepoIn, UsageIn, Weights, compute,
};
use bdc_collector_library_usage_dashboard::render;
use chrono::{NaiveDate, TimeZone, Utc};

use crate::Row;

struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n.max(1)
    }
}

pub fn inputs(libraries: usize, rows: usize, repos: usize) -> Inputs {
    let mut rng = Lcg(42);
    let libs: Vec<LibraryIn> = (0..libraries)
        .map(|i| LibraryIn {
            key: format!("lib{i:03}"),
            name: Some(format!("Library {i}")),
        })
        .collect();
    let repo_rows: Vec<RepoIn> = (0..repos)
        .map(|i| {
            let created = NaiveDate::from_ymd_opt(
                2008 + rng.next(19) as i32,
                1 + rng.next(12) as u32,
                1 + rng.next(28) as u32,
            );
            RepoIn {
                full_name: format!("owner{}/repo{i}", i % 977),
                stars: 11 + rng.next(5_000),
                created,
                pushed: created,
                first_seen: None,
                last_seen: None,
                uses_boost: true,
                boost_version: (rng.next(3) == 0).then(|| format!("1.{}.0", 60 + rng.next(27))),
                gone: false,
            }
        })
        .collect();
    // Skewed: low-numbered libraries are used far more.
    let usages: Vec<UsageIn> = (0..rows)
        .map(|i| {
            let lib =
                (rng.next(libraries as u64) * rng.next(libraries as u64)) as usize / libraries;
            UsageIn {
                repo: format!("owner{}/repo{}", (i % repos) % 977, i % repos),
                header: format!("boost/lib{lib:03}/h{}.hpp", rng.next(20)),
                library: format!("lib{lib:03}"),
            }
        })
        .collect();
    Inputs {
        today: NaiveDate::from_ymd_opt(2026, 6, 1),
        stars_min: 10,
        weights: Weights::default(),
        repos: repo_rows,
        usages,
        libraries: libs,
        cpp_per_year: (2010..=2026)
            .map(|y| (y, 100_000 + y as u64 * 10, 5_000 + y as u64))
            .collect(),
        releases: (60..=86)
            .filter_map(|m| {
                Utc.with_ymd_and_hms(
                    2016 + (m - 60) / 3,
                    1 + ((m - 60) % 3) as u32 * 4,
                    10,
                    0,
                    0,
                    0,
                )
                .single()
                .map(|t| (format!("boost-1.{m}.0"), t))
            })
            .collect(),
        dependencies: None,
        commits: None,
    }
}

pub fn run(quick: bool) -> Result<Vec<Row>> {
    let (libraries, rows, repos) = if quick {
        (17, 5_000, 1_000)
    } else {
        (170, 50_000, 10_000)
    };
    let size = format!("{libraries}x{rows}");
    let inp = inputs(libraries, rows, repos);
    let t0 = Instant::now();
    let data = compute(&inp);
    let compute_ms = t0.elapsed().as_secs_f64() * 1000.0;
    let t1 = Instant::now();
    let pages = render::site_pages(&data)?;
    let pages_ms = t1.elapsed().as_secs_f64() * 1000.0;
    let bytes: usize = pages.iter().map(|p| p.1.len()).sum();
    let t2 = Instant::now();
    let json = serde_json::to_string_pretty(&data)?;
    let csv = render::csv_tables(&data)?;
    let md = render::markdown(&data);
    let files_ms = t2.elapsed().as_secs_f64() * 1000.0;
    anyhow::ensure!(pages.len() == libraries + 1, "pages: {}", pages.len());
    anyhow::ensure!(!json.is_empty() && !csv.is_empty() && !md.is_empty());
    let row = |bench: &str, value: f64, unit: &'static str| Row {
        bench: format!("dashboard-render {bench}"),
        backend: "none",
        size: size.clone(),
        value,
        unit,
    };
    Ok(vec![
        row("compute metrics", compute_ms, "ms"),
        row(
            &format!("render site ({} pages, {} KiB)", pages.len(), bytes / 1024),
            pages_ms,
            "ms",
        ),
        row("json + csv + markdown", files_ms, "ms"),
        row("total", compute_ms + pages_ms + files_ms, "ms"),
    ])
}
