//! The admin dashboard (`/admin`) driven in headless Chromium against the real API and a
//! worker: a user key is told it is not an admin key; the admin key signs in; a running job's
//! progress moves on the page; a queued job is canceled from the job table; a failed job's
//! page shows its error code and retries it; a succeeded job's page shows its transcript and
//! webhook deliveries. The retried jobs then run again (one from a new queue task, one from
//! the task it still had), and `/v1/admin/stats` counts what happened. Throughout, the page
//! breaks no CSP rule, throws nothing and asks nothing of any other server.
//!
//! The screenshots go to `docs/dashboard-*.png` with `WARBLE_SCREENSHOTS=1` (SQLite run
//! only), else to the test's temporary directory.

#[macro_use]
mod common;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chromiumoxide::cdp::browser_protocol::log::{self, EventEntryAdded};
use chromiumoxide::cdp::browser_protocol::network::EventRequestWillBeSent;
use chromiumoxide::cdp::js_protocol::runtime::{EventConsoleApiCalled, EventExceptionThrown};
use chromiumoxide::page::ScreenshotParams;
use chromiumoxide::{Browser, BrowserConfig, Page};
use futures::StreamExt;
use serde_json::{Value, json};

use common::{ADMIN_KEY, Api, Backends, chromium, fixture, long_wav, make_key, start_worker_with};

on_both_databases!(the_dashboard_follows_cancels_and_retries_jobs);

/// How long the page may take to show something.
const WAIT: Duration = Duration::from_secs(20);

/// One job at a time, small chunks and frequent progress writes, so a long job's progress
/// moves many times while the others wait.
const WORKER_ENV: [(&str, &str); 5] = [
    ("WARBLE_CONCURRENCY", "1"),
    ("WARBLE_CHUNK_SECONDS", "6"),
    ("WARBLE_CHUNK_OVERLAP_SECONDS", "2"),
    ("WARBLE_MAX_BATCH_SECONDS", "12"),
    ("WARBLE_PROGRESS_INTERVAL_MS", "100"),
];

/// What the page said on its console, and where it sent requests, as Chromium reports them.
#[derive(Default)]
struct Witness {
    /// Console errors and warnings, CSP violations among them, and uncaught exceptions.
    complaints: Vec<String>,
    /// Every URL the page asked for.
    urls: Vec<String>,
}

/// Collects [`Witness`] from `page`'s events until the test ends.
async fn witness(page: &Page) -> Arc<Mutex<Witness>> {
    page.execute(log::EnableParams::default()).await.unwrap();
    let seen = Arc::new(Mutex::new(Witness::default()));
    let mut entries = page.event_listener::<EventEntryAdded>().await.unwrap();
    let mut console = page
        .event_listener::<EventConsoleApiCalled>()
        .await
        .unwrap();
    let mut exceptions = page.event_listener::<EventExceptionThrown>().await.unwrap();
    let mut requests = page
        .event_listener::<EventRequestWillBeSent>()
        .await
        .unwrap();
    let into = seen.clone();
    tokio::spawn(async move {
        loop {
            let complaint = tokio::select! {
                Some(e) = entries.next() => {
                    let level = format!("{:?}", e.entry.level);
                    (level == "Error" || level == "Warning")
                        .then(|| format!("{level} ({:?}): {}", e.entry.source, e.entry.text))
                }
                Some(e) = console.next() => {
                    let kind = format!("{:?}", e.r#type);
                    (kind == "Error" || kind == "Warning")
                        .then(|| format!("console.{kind}: {:?}", e.args.first().and_then(|a| a.value.clone())))
                }
                Some(e) = exceptions.next() => Some(format!("exception: {:?}", e.exception_details)),
                Some(e) = requests.next() => {
                    into.lock().unwrap().urls.push(e.request.url.clone());
                    None
                }
                else => return,
            };
            if let Some(complaint) = complaint {
                into.lock().unwrap().complaints.push(complaint);
            }
        }
    });
    seen
}

/// Runs `expression` in the page and returns its value.
async fn eval(page: &Page, expression: &str) -> Value {
    page.evaluate(expression)
        .await
        .unwrap_or_else(|err| panic!("evaluating `{expression}`: {err}"))
        .into_value()
        .unwrap_or(Value::Null)
}

/// The text of the first element `selector` matches, `null` if none matches or it is hidden.
async fn text(page: &Page, selector: &str) -> Value {
    let selector = serde_json::to_string(selector).unwrap();
    eval(
        page,
        &format!(
            "(() => {{ const e = document.querySelector({selector}); \
             return e && e.offsetParent !== null ? e.textContent : null; }})()"
        ),
    )
    .await
}

/// Waits until the text of `selector` satisfies `done`, and returns it.
async fn wait_text(page: &Page, selector: &str, done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let found = text(page, selector).await;
        if let Some(found) = found.as_str()
            && done(found)
        {
            return found.to_string();
        }
        assert!(
            Instant::now() < deadline,
            "`{selector}` shows {found} after {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Clicks the element `selector` matches, once it is shown. The page redraws its tables
/// on every refresh, so the element found may be replaced before the click lands: then the
/// click is tried again on the new one.
async fn click(page: &Page, selector: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        wait_text(page, selector, |_| true).await;
        let clicked = match page.find_element(selector).await {
            Ok(element) => element.click().await.map(|_| ()),
            Err(err) => Err(err),
        };
        match clicked {
            Ok(()) => return,
            Err(err) if Instant::now() > deadline => panic!("clicking `{selector}`: {err}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// Types `text` into the input `selector` matches, replacing what it held.
async fn type_into(page: &Page, selector: &str, text: &str) {
    let input = page.find_element(selector).await.unwrap();
    input
        .call_js_fn("function() { this.value = ''; }", false)
        .await
        .unwrap();
    input.click().await.unwrap().type_str(text).await.unwrap();
}

/// Where the screenshots go.
fn screenshots(dir: &Path, database: &str) -> PathBuf {
    if std::env::var("WARBLE_SCREENSHOTS").as_deref() == Ok("1") && database == "sqlite" {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs")
    } else {
        dir.to_path_buf()
    }
}

async fn screenshot(page: &Page, to: &Path, name: &str) {
    // Let the last refresh's bars finish their transition.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let png = page
        .screenshot(ScreenshotParams::builder().full_page(true).build())
        .await
        .unwrap();
    std::fs::write(to.join(format!("dashboard-{name}.png")), png).unwrap();
}

/// Polls the job until `done(job)`.
async fn job_until(api: &Api, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    api.wait_until(id, Duration::from_secs(60), done).await
}

async fn the_dashboard_follows_cancels_and_retries_jobs(mut backends: Backends, dir: &Path) {
    let started = Instant::now();
    let chromium = chromium();
    let database = if backends.database_url.starts_with("sqlite") {
        "sqlite"
    } else {
        "postgres"
    };
    // An endpoint nobody answers: each job's events are deliveries that keep failing.
    backends
        .env
        .push(("WARBLE_WEBHOOK_ALLOW_PRIVATE".into(), "true".into()));
    let api = Api::start(&backends);
    let (_, user_key) = make_key(&api, "viewer", "user", None).await;
    let forbidden = api.as_key(&user_key).get("/v1/admin/stats").await;
    assert_eq!(forbidden.status(), 403);
    let hook = api
        .client
        .post(api.url("/v1/webhooks"))
        .json(&json!({
            "url": "http://127.0.0.1:9/hook",
            "events": ["job.started", "job.succeeded", "job.failed", "job.canceled"],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(hook.status(), 201, "{}", hook.text().await.unwrap());

    // Queued in this order, run one at a time: a short job that succeeds, a truncated file
    // that fails, a long job that runs while the page watches, and one that waits behind it.
    let wav = std::fs::read(fixture("audio/tts_us_m6.wav")).unwrap();
    let truncated = dir.join("truncated.wav");
    std::fs::write(&truncated, &wav[..wav.len() / 2]).unwrap();
    let short = api.submit_ok(&fixture("audio/tts_rp_m7.wav")).await;
    let broken = api.submit_ok(&truncated).await;
    let long = api.submit_ok(&long_wav(dir, 2400)).await;
    let waiting = api.submit_ok(&fixture("audio/tts_en_f5.wav")).await;
    let _worker = start_worker_with(&api, &backends, &WORKER_ENV).await;
    job_until(&api, &long, |j| j["status"] == "running").await;
    assert_eq!(
        api.get_json(&format!("/v1/jobs/{short}")).await["status"],
        "succeeded"
    );
    assert_eq!(
        api.get_json(&format!("/v1/jobs/{broken}")).await["status"],
        "failed"
    );

    let config = BrowserConfig::builder()
        .chrome_executable(chromium)
        .no_sandbox()
        .user_data_dir(dir.join("chromium"))
        .arg("--disable-gpu")
        .arg("--disable-dev-shm-usage")
        .window_size(1400, 1000)
        // The page's own size too (chromiumoxide's default viewport is 800 × 600).
        .viewport(chromiumoxide::handler::viewport::Viewport {
            width: 1400,
            height: 1000,
            ..Default::default()
        })
        .launch_timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let (mut browser, mut handler) = Browser::launch(config).await.expect("launching Chromium");
    let driver = tokio::spawn(async move { while handler.next().await.is_some() {} });
    let page = browser.new_page("about:blank").await.unwrap();
    let seen = witness(&page).await;
    let shots = screenshots(dir, database);

    // Signing in: a user key is refused as such, the admin key is let in.
    page.goto(api.url("/admin")).await.unwrap();
    wait_text(&page, "#login", |t| t == "Sign in").await;
    type_into(&page, "#key", &user_key).await;
    click(&page, "#login").await;
    wait_text(&page, "#login-error", |t| t.contains("not an admin key")).await;
    type_into(&page, "#key", ADMIN_KEY).await;
    click(&page, "#login").await;
    wait_text(&page, "#stat-running", |t| t == "1").await;
    let stored = eval(&page, "sessionStorage.getItem('warble.admin.key')").await;
    assert_eq!(stored, ADMIN_KEY);

    // The running job's progress moves on the page, refreshed without a reload.
    let row = |id: &str| format!("#jobs tr[data-job=\"{id}\"]");
    let mut shown = Vec::new();
    let deadline = Instant::now() + WAIT;
    while shown.len() < 3 {
        let label = text(&page, &format!("{} .progress-label", row(&long))).await;
        if let Some(label) = label.as_str()
            && label.ends_with('%')
            && !shown.iter().any(|s| s == label)
        {
            shown.push(label.to_string());
        }
        assert!(Instant::now() < deadline, "progress shown: {shown:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    wait_text(&page, "#workers tr .progress-label", |_| true).await;
    wait_text(
        &page,
        &format!("#failures tr[data-job=\"{broken}\"] .error-code"),
        |t| t == "audio_decode_failed",
    )
    .await;
    screenshot(&page, &shots, "overview").await;

    // Cancel the waiting job from the table.
    wait_text(&page, &format!("{} .status", row(&waiting)), |t| {
        t == "queued"
    })
    .await;
    click(
        &page,
        &format!("{} button[data-action=cancel]", row(&waiting)),
    )
    .await;
    job_until(&api, &waiting, |j| j["status"] == "canceled").await;
    wait_text(&page, &format!("{} .status", row(&waiting)), |t| {
        t == "canceled"
    })
    .await;

    // Open the failure from the list of failures; retry it from its page.
    click(&page, &format!("#failures a[href=\"#/jobs/{broken}\"]")).await;
    wait_text(&page, "#job-error-code", |t| t == "audio_decode_failed").await;
    wait_text(&page, "#job-error-message", |t| {
        t.contains("truncated or damaged")
    })
    .await;
    screenshot(&page, &shots, "failure").await;
    click(&page, "#job-retry").await;
    wait_text(&page, "#job-status", |t| t == "queued").await;
    let retried = api.get_json(&format!("/v1/jobs/{broken}")).await;
    assert_eq!(retried["status"], "queued", "{retried}");
    assert_eq!(retried["attempts"], 0, "{retried}");
    assert_eq!(retried["error"], Value::Null, "{retried}");

    // A succeeded job's page: its transcript and the deliveries of its events.
    // A change of the hash only: no navigation to wait for.
    eval(&page, &format!("location.hash = '#/jobs/{short}'")).await;
    let transcript = api
        .get(&format!("/v1/jobs/{short}/transcript?format=text"))
        .await
        .text()
        .await
        .unwrap();
    wait_text(&page, "#job-transcript", |t| t == transcript).await;
    wait_text(&page, "#job-deliveries tbody", |t| {
        t.contains("job.started") && t.contains("job.succeeded")
    })
    .await;
    screenshot(&page, &shots, "job").await;

    // The canceled job is retried from the table (its first queue task never ran: it is the
    // one that runs it), then the long job is canceled and both retried jobs run again.
    eval(&page, "location.hash = '#/'").await;
    click(
        &page,
        &format!("{} button[data-action=retry]", row(&waiting)),
    )
    .await;
    job_until(&api, &waiting, |j| j["status"] != "canceled").await;
    // The long job may have finished by now on a fast machine: then it is not canceled.
    let canceled = api.post(&format!("/v1/jobs/{long}/cancel")).await.status() == 200;
    let long_job = api.wait_final(&long, Duration::from_secs(60)).await;
    assert_eq!(
        long_job["status"],
        if canceled { "canceled" } else { "succeeded" }
    );
    let again = job_until(&api, &broken, |j| j["status"] == "failed").await;
    assert_eq!(again["attempts"], 1, "{again}");
    assert_eq!(again["error"]["code"], "audio_decode_failed");
    job_until(&api, &waiting, |j| j["status"] == "succeeded").await;
    let conflict = api.post(&format!("/v1/jobs/{waiting}/retry")).await;
    let (status, code) = common::error_of(conflict).await;
    assert_eq!((status, code.as_str()), (409, "job_not_retryable"));
    let audit = api.get_json("/v1/audit").await.to_string();
    assert!(audit.contains("job.retry"), "{audit}");

    // The numbers: each job counted once, by its last outcome.
    let stats = api.get_json("/v1/admin/stats?minutes=5").await;
    let buckets = stats["buckets"].as_array().unwrap();
    assert_eq!(buckets.len(), 5);
    let sum = |field: &str| {
        buckets
            .iter()
            .map(|b| b[field].as_i64().unwrap())
            .sum::<i64>()
    };
    let long_canceled = i64::from(canceled);
    assert_eq!(
        (sum("succeeded"), sum("failed"), sum("canceled")),
        (3 - long_canceled, 1, long_canceled),
        "{stats}"
    );
    assert_eq!(
        (stats["queued"].as_i64(), stats["running"].as_i64()),
        (Some(0), Some(0))
    );
    assert_eq!(buckets.last().unwrap()["queue_depth"], 0);
    let audio: f64 = buckets
        .iter()
        .map(|b| b["audio_seconds"].as_f64().unwrap())
        .sum();
    assert!(audio > 1.0, "{stats}");

    // Nothing went wrong in the page, and it asked nothing of anyone else. The listener does
    // hear a CSP violation: an inline script, refused.
    let witnessed = std::mem::take(&mut *seen.lock().unwrap());
    // Chromium logs every answer of 400 or more; the user key's was the only one expected.
    let complaints: Vec<_> = witnessed
        .complaints
        .iter()
        .filter(|c| !c.contains("status of 403 (Forbidden)"))
        .collect();
    assert!(complaints.is_empty(), "{complaints:#?}");
    let foreign: Vec<_> = witnessed
        .urls
        .iter()
        .filter(|u| !u.starts_with(&api.base) && !u.starts_with("data:") && *u != "about:blank")
        .collect();
    assert!(foreign.is_empty(), "{foreign:?}");
    assert!(
        witnessed
            .urls
            .iter()
            .any(|u| u.ends_with("/admin/assets/charts.js"))
    );
    eval(
        &page,
        "(() => { const s = document.createElement('script'); s.textContent = 'window.x = 1'; \
         document.body.append(s); return 0; })()",
    )
    .await;
    let deadline = Instant::now() + WAIT;
    while !seen
        .lock()
        .unwrap()
        .complaints
        .iter()
        .any(|c| c.contains("Content Security Policy"))
    {
        assert!(Instant::now() < deadline, "no CSP violation heard");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    browser.close().await.ok();
    browser.wait().await.ok();
    driver.abort();
    eprintln!("dashboard on {database}: {:?}", started.elapsed());
}
