//! `youtube-transcripts` against a local stand-in (wiremock) of the
//! YouTube Data API v3 (`channels`, `playlistItems` paged with
//! `nextPageToken`, `videos`) in its documented JSON shapes, and of the
//! timed-text endpoint serving generated WebVTT and timed-text XML, an
//! empty answer, a 404 and a broken body. Every scenario on SQLite and
//! PostgreSQL.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bdc_collector::{CollectContext, Collector};
use bdc_collector_youtube_transcripts::store::{segments, videos};
use bdc_collector_youtube_transcripts::{NAME, SCHEMA, YoutubeCollector};
use bdc_config::Config;
use bdc_core::TrackerResult;
use bdc_http::ManualClock;
use bdc_storage::{ConnectOptions, Storage};
use bdc_testsupport::both_backends as both;
use bdc_testsupport::{Kind, TestDb};
use chrono::TimeZone;
use serde_json::json;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const KEY: &str = "AIza-test-key-never-in-urls";
const CHANNEL: &str = "UCMlGfpWw-RUdWX_JbLCukXg";
const UPLOADS: &str = "UUMlGfpWw-RUdWX_JbLCukXg";

#[derive(Default)]
struct Model {
    /// Uploads, newest first: (video id, published).
    uploads: Vec<(String, String)>,
    /// Caption answers per video id: (status, body).
    captions: BTreeMap<String, (u16, String)>,
    paths: Vec<String>,
    keys_seen: Vec<String>,
}

#[derive(Clone, Default)]
struct Fake(Arc<Mutex<Model>>);

const PAGE: usize = 2;

impl Respond for Fake {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let mut m = self.0.lock().unwrap();
        let q: BTreeMap<String, String> = req.url.query_pairs().into_owned().collect();
        m.paths.push(req.url.to_string());
        let path = req.url.path().to_owned();
        if path.starts_with("/api/timedtext") {
            let v = q.get("v").cloned().unwrap_or_default();
            return match m.captions.get(&v) {
                Some((status, body)) => {
                    ResponseTemplate::new(*status).set_body_string(body.clone())
                }
                None => ResponseTemplate::new(200).set_body_string(""),
            };
        }
        let key = req
            .headers
            .get("x-goog-api-key")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        m.keys_seen.push(key.clone());
        if key != KEY {
            return ResponseTemplate::new(400).set_body_json(json!({
                "error": {"code": 400, "message": "API key not valid. Please pass a valid API key.",
                          "errors": [{"reason": "badRequest"}]}
            }));
        }
        match path.as_str() {
            "/youtube/v3/channels" => {
                assert_eq!(q.get("id").map(String::as_str), Some(CHANNEL));
                ResponseTemplate::new(200).set_body_json(json!({
                    "kind": "youtube#channelListResponse",
                    "pageInfo": {"totalResults": 1, "resultsPerPage": 5},
                    "items": [{"kind": "youtube#channel", "id": CHANNEL,
                               "contentDetails": {"relatedPlaylists": {"likes": "", "uploads": UPLOADS}}}]
                }))
            }
            "/youtube/v3/playlistItems" => {
                assert_eq!(q.get("playlistId").map(String::as_str), Some(UPLOADS));
                let start: usize = q
                    .get("pageToken")
                    .and_then(|t| t.strip_prefix("p"))
                    .and_then(|t| t.parse().ok())
                    .unwrap_or(0);
                let items: Vec<serde_json::Value> = m
                    .uploads
                    .iter()
                    .skip(start)
                    .take(PAGE)
                    .map(|(id, published)| {
                        json!({"kind": "youtube#playlistItem", "id": format!("pi-{id}"),
                               "contentDetails": {"videoId": id, "videoPublishedAt": published}})
                    })
                    .collect();
                let mut body = json!({
                    "kind": "youtube#playlistItemListResponse",
                    "pageInfo": {"totalResults": m.uploads.len(), "resultsPerPage": PAGE},
                    "items": items
                });
                if start + PAGE < m.uploads.len() {
                    body["nextPageToken"] = json!(format!("p{}", start + PAGE));
                }
                ResponseTemplate::new(200).set_body_json(body)
            }
            "/youtube/v3/videos" => {
                let ids: Vec<String> = q
                    .get("id")
                    .map(|s| s.split(',').map(str::to_owned).collect())
                    .unwrap_or_default();
                let items: Vec<serde_json::Value> = ids
                    .iter()
                    .filter_map(|id| m.uploads.iter().find(|(v, _)| v == id))
                    .map(|(id, published)| {
                        json!({
                            "kind": "youtube#video", "id": id,
                            "snippet": {"publishedAt": published, "channelId": CHANNEL,
                                        "title": format!("Talk {id}"), "description": "A talk",
                                        "channelTitle": "CppCon", "tags": ["C++", "cppcon"]},
                            "contentDetails": {"duration": "PT1H2M3S", "caption": "true"},
                            "statistics": {"viewCount": "1234", "likeCount": "56", "commentCount": "7"}
                        })
                    })
                    .collect();
                ResponseTemplate::new(200).set_body_json(json!({
                    "kind": "youtube#videoListResponse", "items": items
                }))
            }
            _ => ResponseTemplate::new(404).set_body_json(json!({"error": {"code": 404}})),
        }
    }
}

const VTT: &str = "WEBVTT\n\n00:00:01.000 --> 00:00:02.500\nWelcome to &amp; CppCon\n\n00:00:02.500 --> 00:00:04.000\n<c>ranges</c> everywhere\n\n00:00:09.000 --> 00:00:08.000\nbroken cue\n";
const XML: &str = r#"<?xml version="1.0" encoding="utf-8" ?><transcript><text start="0" dur="1.5">Hello</text><text start="1.5" dur="2">It&amp;#39;s modules</text></transcript>"#;

struct Env {
    _db: TestDb,
    storage: Storage,
    workspace: tempfile::TempDir,
    fake: Fake,
    api: String,
    _server: MockServer,
    clock: Arc<ManualClock>,
}

impl Env {
    async fn new(kind: Kind) -> Env {
        let db = TestDb::new(kind).await;
        let storage = Storage::connect(db.url(), &ConnectOptions::default())
            .await
            .unwrap();
        storage
            .migrate_parts(&[&bdc_http::SCHEMA, &SCHEMA])
            .await
            .unwrap();
        let server = MockServer::start().await;
        let fake = Fake::default();
        Mock::given(wiremock::matchers::any())
            .respond_with(fake.clone())
            .mount(&server)
            .await;
        {
            let mut m = fake.0.lock().unwrap();
            // v5 newest ... v1 oldest (uploads playlists are newest first).
            for (i, day) in [(5, 15), (4, 12), (3, 10), (2, 5), (1, 1)] {
                m.uploads
                    .push((format!("vid{i}"), format!("2024-03-{day:02}T10:00:00Z")));
            }
            m.captions.insert("vid1".into(), (200, VTT.into()));
            m.captions.insert("vid2".into(), (200, XML.into()));
            m.captions.insert("vid3".into(), (404, "".into()));
            m.captions
                .insert("vid4".into(), (200, "<html>consent page</html>".into()));
            // vid5: empty body (no track)
        }
        let workspace = tempfile::tempdir().unwrap();
        std::fs::write(
            workspace.path().join("channels.yaml"),
            format!("CppCon: {CHANNEL}\n"),
        )
        .unwrap();
        Env {
            _db: db,
            storage,
            workspace,
            fake,
            api: server.uri(),
            _server: server,
            clock: Arc::new(ManualClock::new(
                chrono::Utc.with_ymd_and_hms(2024, 4, 1, 0, 0, 0).unwrap(),
            )),
        }
    }

    fn context(&self, args: &[&str]) -> CollectContext {
        let ws = self.workspace.path().display().to_string();
        let api = self.api.clone();
        let channels = self
            .workspace
            .path()
            .join("channels.yaml")
            .display()
            .to_string();
        let config = Config::from_lookup(|k| match k {
            "WORKSPACE_DIR" => Some(ws.clone()),
            "DATABASE_URL" => Some("sqlite::memory:".into()),
            "YOUTUBE_API_KEY" => Some(KEY.into()),
            "YOUTUBE_API_URL" => Some(format!("{api}/youtube/v3")),
            "YOUTUBE_TIMEDTEXT_URL" => Some(format!("{api}/api/timedtext")),
            "YOUTUBE_CHANNELS_FILE" => Some(channels.clone()),
            _ => None,
        })
        .unwrap();
        CollectContext {
            run_id: "test-run".into(),
            command: NAME.into(),
            args: args.iter().map(|s| s.to_string()).collect(),
            schedule_group: None,
            storage: self.storage.clone(),
            config: Arc::new(config),
            interactive: false,
        }
    }

    async fn run(&self, args: &[&str]) -> TrackerResult {
        let c = YoutubeCollector::with_clock(self.clock.clone());
        match c.run(&self.context(args)).await {
            Ok(r) => r,
            Err(e) => panic!("run {args:?} failed: {e}"),
        }
    }

    async fn state(&self) -> Vec<(String, String, i64, usize)> {
        let mut out = Vec::new();
        for v in videos(&self.storage).await.unwrap() {
            let n = segments(&self.storage, &v.video_id).await.unwrap().len();
            out.push((v.video_id, v.transcript_status, v.transcript_attempts, n));
        }
        out
    }
}

both!(videos_and_transcripts);
async fn videos_and_transcripts(kind: Kind) {
    let env = Env::new(kind).await;
    let r = env.run(&[]).await;
    assert_eq!(r.count("channels"), 1, "{r:?}");
    assert_eq!(r.count("pages"), 3);
    assert_eq!(r.count("inserted"), 5);
    // channels.list + 3 playlistItems pages + 3 videos.list
    assert_eq!(r.count("quota_units"), 7);
    assert_eq!(r.count("transcripts_ok"), 2);
    assert_eq!(r.count("transcripts_missing"), 2); // 404 and empty
    assert_eq!(r.count("transcripts_invalid"), 1); // consent page
    assert_eq!(r.count("cues_skipped"), 1);
    assert_eq!(r.count("segments"), 4);
    assert_eq!(
        env.state().await,
        vec![
            ("vid1".into(), "ok".into(), 1, 2),
            ("vid2".into(), "ok".into(), 1, 2),
            ("vid3".into(), "none".into(), 1, 0),
            ("vid4".into(), "invalid".into(), 1, 0),
            ("vid5".into(), "none".into(), 1, 0),
        ]
    );
    let segs = segments(&env.storage, "vid2").await.unwrap();
    assert_eq!(segs[1].text, "It's modules");
    assert_eq!((segs[1].start_ms, segs[1].end_ms), (1500, 3500));
    let segs = segments(&env.storage, "vid1").await.unwrap();
    assert_eq!(segs[0].text, "Welcome to & CppCon");

    // The key travels as a header only: never in a URL, the raw archive or
    // the HTTP cache.
    {
        let m = env.fake.0.lock().unwrap();
        assert!(m.paths.iter().all(|p| !p.contains(KEY)));
        assert!(
            m.paths.iter().all(|p| !p.contains("/search")),
            "no search.list"
        );
    }
    for entry in walk(&env.workspace.path().join("raw")) {
        let bytes = std::fs::read(&entry).unwrap();
        // index.jsonl holds the URLs in plain text; bodies are gzip.
        let text = String::from_utf8_lossy(&bytes).into_owned();
        assert!(!text.contains(KEY), "key in {}", entry.display());
    }

    // Second run: nothing newer than the checkpoint (one page read, no
    // videos.list), no transcript due yet (retry after a day).
    env.fake.0.lock().unwrap().paths.clear();
    let r = env.run(&[]).await;
    assert_eq!(r.count("inserted") + r.count("updated"), 0, "{r:?}");
    assert_eq!(r.count("pages"), 1);
    assert_eq!(r.count("quota_units"), 1, "channel's playlist is stored");
    assert_eq!(
        r.count("transcripts_ok") + r.count("transcripts_missing"),
        0
    );

    // A new upload and two days later: the new video, and the videos
    // without captions are asked again; vid3 now has captions.
    {
        let mut m = env.fake.0.lock().unwrap();
        m.uploads
            .insert(0, ("vid6".into(), "2024-03-20T10:00:00Z".into()));
        m.captions.insert("vid3".into(), (200, VTT.into()));
        m.captions.insert("vid6".into(), (200, XML.into()));
    }
    env.clock.advance(Duration::from_secs(2 * 86_400));
    let r = env.run(&[]).await;
    assert_eq!(r.count("inserted"), 1, "{r:?}");
    assert_eq!(r.count("transcripts_ok"), 2, "{r:?}"); // vid3 and vid6
    let state = env.state().await;
    assert_eq!(state[2], ("vid3".into(), "ok".into(), 2, 2));
    assert_eq!(state[4], ("vid5".into(), "none".into(), 2, 0));

    // Not forever: after MAX attempts a video is left alone.
    for _ in 0..6 {
        env.clock.advance(Duration::from_secs(9 * 86_400));
        env.run(&["--skip-transcript"]).await;
        env.run(&[]).await;
    }
    let state = env.state().await;
    assert_eq!(state[4].2, 5, "{state:?}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

// The quota budget stops a run cleanly before it is exceeded; the
// unfinished channel keeps its checkpoint and the next run ends with the
// same rows as one uninterrupted run.
both!(quota_budget_stops_cleanly_and_resumes);
async fn quota_budget_stops_cleanly_and_resumes(kind: Kind) {
    let env = Env::new(kind).await;
    let r = env.run(&["--quota-budget", "4", "--skip-transcript"]).await;
    assert_eq!(r.count("quota_stopped"), 1, "{r:?}");
    assert_eq!(r.count("quota_units"), 4);
    assert_eq!(r.count("inserted"), 2, "first page stored");
    let r = env.run(&[]).await;
    assert_eq!(r.count("quota_stopped"), 0);
    assert_eq!(r.count("inserted"), 3, "{r:?}");

    let fresh = Env::new(kind).await;
    fresh.run(&[]).await;
    assert_eq!(env.state().await, fresh.state().await);
}

// --dry-run reads and parses everything and writes nothing; bad input is
// refused with clear errors.
both!(dry_run_and_bad_input);
async fn dry_run_and_bad_input(kind: Kind) {
    let env = Env::new(kind).await;
    let r = env.run(&["--dry-run"]).await;
    assert_eq!(r.count("would_write"), 5, "{r:?}");
    assert!(videos(&env.storage).await.unwrap().is_empty());

    let c = YoutubeCollector::with_clock(env.clock.clone());
    let err = c
        .run(&env.context(&["--channel-title", "Nope"]))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("no channel titled Nope"), "{err}");
    std::fs::write(
        env.workspace.path().join("channels.yaml"),
        "CppCon: not-an-id\n",
    )
    .unwrap();
    let err = c.run(&env.context(&[])).await.unwrap_err().to_string();
    assert!(err.contains("is not a channel id"), "{err}");
}

// A replay of the raw archive (no network) gives the same rows.
both!(replay_from_archive);
async fn replay_from_archive(kind: Kind) {
    let env = Env::new(kind).await;
    env.run(&[]).await;
    let archive = env.workspace.path().join("raw").join(NAME);
    // Another database, the same configuration (URLs are archive keys).
    let mut other = Env::new(kind).await;
    other.api = env.api.clone();
    let before = env.fake.0.lock().unwrap().paths.len();
    let dir = archive.display().to_string();
    let r = other.run(&["--from-archive", "--archive-dir", &dir]).await;
    assert_eq!(r.count("requests"), 0, "{r:?}");
    assert_eq!(r.count("inserted"), 5, "{r:?}");
    assert_eq!(env.state().await, other.state().await);
    assert_eq!(env.fake.0.lock().unwrap().paths.len(), before, "no request");
}

/// Regenerates the demo's recorded answers (`examples/youtube/raw`): runs
/// against the stand-in, then rewrites the archived URLs to the public
/// endpoints the demo's configuration uses. `cargo test -p
/// bdc-collector-youtube-transcripts -- --ignored record_demo_archive`.
#[tokio::test]
#[ignore]
async fn record_demo_archive() {
    let env = Env::new(Kind::Sqlite).await;
    {
        let mut m = env.fake.0.lock().unwrap();
        m.uploads
            .retain(|(id, _)| id == "vid1" || id == "vid2" || id == "vid3");
        for (id, title) in [
            (
                "vid1",
                "WEBVTT\n\n00:00:01.000 --> 00:00:04.000\nWelcome to this talk about Boost.JSON.\n\n00:00:04.000 --> 00:00:08.500\nWe will parse, serialize &amp; benchmark.\n",
            ),
            (
                "vid2",
                r#"<?xml version="1.0" encoding="utf-8" ?><transcript><text start="0" dur="3.2">Boost.Asio in practice</text><text start="3.2" dur="4">It&amp;#39;s all about executors</text></transcript>"#,
            ),
        ] {
            m.captions.insert(id.into(), (200, title.into()));
        }
    }
    env.run(&[]).await;
    let src = env.workspace.path().join("raw").join(NAME);
    let dst =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../examples/youtube/raw");
    let _ = std::fs::remove_dir_all(&dst);
    for f in walk(&src) {
        let rel = f.strip_prefix(&src).unwrap();
        let to = dst.join(rel);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        if rel == std::path::Path::new("index.jsonl") {
            let text = std::fs::read_to_string(&f)
                .unwrap()
                .replace(
                    &format!("{}/youtube/v3", env.api),
                    bdc_config::DEFAULT_YOUTUBE_API_URL,
                )
                .replace(
                    &format!("{}/api/timedtext", env.api),
                    bdc_config::DEFAULT_YOUTUBE_TIMEDTEXT_URL,
                );
            std::fs::write(&to, text).unwrap();
        } else {
            std::fs::copy(&f, &to).unwrap();
        }
    }
}
