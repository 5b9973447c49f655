//! Swagger UI's "Try it out" calls the operation it shows. A headless Chromium opens `/docs/`
//! of the real server, authorises with the admin key through the Authorize dialog and, for
//! every operation of the spec, expands it, clicks "Try it out", fills the required path
//! parameters and file fields, clicks "Execute" and checks, through the DevTools protocol,
//! that the request that left the page has that operation's method and path. Swagger UI keys
//! operations by `operationId`: when five operations were all `list`, "Try it out" on
//! `GET /v1/jobs` sent `GET /v1/audit`, and `DELETE /v1/webhooks/{id}` sent
//! `DELETE /v1/jobs/{id}`.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use chromiumoxide::cdp::browser_protocol::dom::SetFileInputFilesParams;
use chromiumoxide::cdp::browser_protocol::network::EventRequestWillBeSent;
use chromiumoxide::{Browser, BrowserConfig, Element, Page};
use futures::StreamExt;
use serde_json::Value;

use common::{ADMIN_KEY, Api, Backends, chromium};

/// How long a selector or a request may take to appear.
const WAIT: Duration = Duration::from_secs(15);

/// One operation of the spec, as the test exercises it.
struct Operation {
    method: String,
    /// The template: `/v1/jobs/{id}`.
    path: String,
    /// Required parameters (`(name, in)`), which the test fills.
    required: Vec<(String, String)>,
    /// A `multipart/form-data` body: its file fields get a file.
    multipart: bool,
    /// Whether the operation needs a key (not `security: [{}]`, as the probes have).
    secured: bool,
}

impl Operation {
    fn name(&self) -> String {
        format!("{} {}", self.method.to_uppercase(), self.path)
    }
}

/// Every operation of the spec, in its order.
fn operations(spec: &Value) -> Vec<Operation> {
    let mut operations = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            if !["get", "put", "post", "delete", "patch"].contains(&method.as_str()) {
                continue;
            }
            let required = operation["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["required"] == true)
                .map(|p| {
                    let field = |k: &str| p[k].as_str().unwrap().to_string();
                    (field("name"), field("in"))
                })
                .collect();
            let multipart = operation["requestBody"]["content"]
                .get("multipart/form-data")
                .is_some();
            let secured = !operation["security"].as_array().is_some_and(|s| {
                s.iter()
                    .all(|r| r.as_object().is_some_and(|r| r.is_empty()))
            });
            operations.push(Operation {
                method: method.clone(),
                path: path.clone(),
                required,
                multipart,
                secured,
            });
        }
    }
    operations
}

/// Waits for `selector` to match, polling the DOM.
async fn wait_for(page: &Page, selector: &str) -> Result<Element, String> {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(element) = page.find_element(selector).await {
            return Ok(element);
        }
        if Instant::now() > deadline {
            return Err(format!("nothing matched `{selector}` within {WAIT:?}"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Clicks the element `selector` matches, once it does.
async fn click(page: &Page, selector: &str) -> Result<(), String> {
    let element = wait_for(page, selector).await?;
    element
        .click()
        .await
        .map_err(|err| format!("clicking `{selector}`: {err}"))?;
    Ok(())
}

/// Clicks into the input `selector` matches and types `text`, as a person would.
async fn type_into(page: &Page, selector: &str, text: &str) -> Result<(), String> {
    let element = wait_for(page, selector).await?;
    element
        .click()
        .await
        .map_err(|err| format!("focusing `{selector}`: {err}"))?;
    element
        .type_str(text)
        .await
        .map_err(|err| format!("typing into `{selector}`: {err}"))?;
    Ok(())
}

/// The requests the page sends to the API, as Chromium reports them (`Network.requestWillBeSent`).
struct Requests {
    events: chromiumoxide::listeners::EventStream<EventRequestWillBeSent>,
    base: String,
}

/// A request that left the page: method, URL, `Authorization` header.
#[derive(Debug)]
struct Sent {
    method: String,
    url: String,
    authorization: Option<String>,
}

impl Requests {
    /// The next request to the API, if one is sent within `timeout`.
    async fn next(&mut self, timeout: Duration) -> Option<Sent> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let event = tokio::time::timeout_at(deadline, self.events.next())
                .await
                .ok()??;
            let request = &event.request;
            let Some(path) = request.url.strip_prefix(&self.base) else {
                continue;
            };
            // The page, its scripts and the spec it loads (`/docs/openapi.json`).
            if path.starts_with("/docs/") || path == "/favicon.ico" {
                continue;
            }
            let authorization = request
                .headers
                .inner()
                .as_object()
                .and_then(|h| {
                    h.iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
                })
                .and_then(|(_, v)| v.as_str())
                .map(str::to_string);
            return Some(Sent {
                method: request.method.clone(),
                url: request.url.clone(),
                authorization,
            });
        }
    }
}

/// Opens the operation, tries it out and checks the request it sends.
async fn try_out(
    page: &Page,
    requests: &mut Requests,
    operation: &Operation,
    value: &str,
    upload: &Path,
) -> Result<(), String> {
    // The block of this method and path; found by what the page shows, not by operationId.
    let block = format!(
        ".opblock.opblock-{}:has(> .opblock-summary .opblock-summary-path[data-path=\"{}\"])",
        operation.method, operation.path
    );
    click(page, &format!("{block} .opblock-summary-control")).await?;
    click(page, &format!("{block} .try-out__btn")).await?;
    let mut expected_path = operation.path.clone();
    for (name, location) in &operation.required {
        let row = format!("{block} tr[data-param-name=\"{name}\"][data-param-in=\"{location}\"]");
        type_into(page, &format!("{row} input"), value).await?;
        if location == "path" {
            expected_path = expected_path.replace(&format!("{{{name}}}"), value);
        }
    }
    if operation.multipart {
        // Where the route also takes JSON, Swagger UI shows that first: pick the form, as a
        // person would in the request body's content-type menu.
        if let Ok(menu) = page
            .find_element(format!("{block} .opblock-section-request-body select"))
            .await
        {
            menu.call_js_fn(
                "function() { \
                   const set = Object.getOwnPropertyDescriptor(HTMLSelectElement.prototype, 'value').set; \
                   set.call(this, 'multipart/form-data'); \
                   this.dispatchEvent(new Event('change', { bubbles: true })); }",
                false,
            )
            .await
            .map_err(|err| format!("choosing multipart/form-data: {err}"))?;
        }
        let input = wait_for(page, &format!("{block} input[type=file]")).await?;
        let files = SetFileInputFilesParams::builder()
            .file(upload.display().to_string())
            .backend_node_id(input.backend_node_id)
            .build()
            .unwrap();
        page.execute(files)
            .await
            .map_err(|err| format!("choosing the file: {err}"))?;
    }
    click(page, &format!("{block} .btn.execute")).await?;
    let sent = requests
        .next(WAIT)
        .await
        .ok_or_else(|| format!("no request left the page within {WAIT:?}"))?;
    // Its answer is shown (whatever it is: 404 for the made-up ids) before the next one.
    let shown = wait_for(page, &format!("{block} .live-responses-table")).await;
    let url = url::Url::parse(&sent.url).unwrap();
    let mut problems = Vec::new();
    if !sent.method.eq_ignore_ascii_case(&operation.method) || url.path() != expected_path {
        problems.push(format!(
            "sent {} {} instead of {} {expected_path}",
            sent.method,
            url.path(),
            operation.method.to_uppercase()
        ));
    }
    let bearer = format!("Bearer {ADMIN_KEY}");
    if operation.secured && sent.authorization.as_deref() != Some(bearer.as_str()) {
        problems.push(format!(
            "sent without the key from the Authorize dialog (Authorization: {:?})",
            sent.authorization
        ));
    }
    if let Err(err) = shown {
        problems.push(format!("its response was not shown: {err}"));
    }
    // One request, not two: by the time its answer is shown, a second would have been sent.
    if let Some(extra) = requests.next(Duration::ZERO).await {
        problems.push(format!("also sent {} {}", extra.method, extra.url));
    }
    // Closed again: the page slows down with every open operation.
    click(page, &format!("{block} .opblock-summary-control")).await?;
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

/// A short WAV file (16 kHz mono, 0.1 s of silence) to upload.
fn wav(path: &Path) {
    let samples = 1600u32;
    let mut bytes = Vec::new();
    bytes.extend_from_slice(b"RIFF");
    bytes.extend_from_slice(&(36 + samples * 2).to_le_bytes());
    bytes.extend_from_slice(b"WAVEfmt ");
    bytes.extend_from_slice(&16u32.to_le_bytes());
    bytes.extend_from_slice(&1u16.to_le_bytes()); // PCM
    bytes.extend_from_slice(&1u16.to_le_bytes()); // mono
    bytes.extend_from_slice(&16_000u32.to_le_bytes());
    bytes.extend_from_slice(&32_000u32.to_le_bytes());
    bytes.extend_from_slice(&2u16.to_le_bytes());
    bytes.extend_from_slice(&16u16.to_le_bytes());
    bytes.extend_from_slice(b"data");
    bytes.extend_from_slice(&(samples * 2).to_le_bytes());
    bytes.resize(bytes.len() + samples as usize * 2, 0);
    std::fs::write(path, bytes).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn try_it_out_sends_every_operation_to_its_own_endpoint() {
    let chromium = chromium();
    let dir = tempfile::tempdir().unwrap();
    let api = Api::start(&Backends::local(dir.path()));
    let spec = api.get_json("/openapi.json").await;
    let operations = operations(&spec);
    assert!(operations.len() > 20, "{} operations", operations.len());
    let upload = dir.path().join("clip.wav");
    wav(&upload);

    let config = BrowserConfig::builder()
        .chrome_executable(chromium)
        .no_sandbox()
        .user_data_dir(dir.path().join("chromium"))
        .arg("--disable-gpu")
        .arg("--disable-dev-shm-usage")
        .window_size(1280, 1024)
        .launch_timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let (mut browser, mut handler) = Browser::launch(config).await.expect("launching Chromium");
    let driver = tokio::spawn(async move { while handler.next().await.is_some() {} });
    let page = browser.new_page("about:blank").await.unwrap();
    let mut requests = Requests {
        events: page
            .event_listener::<EventRequestWillBeSent>()
            .await
            .unwrap(),
        base: api.base.trim_end_matches('/').to_string(),
    };
    page.goto(api.url("/docs/")).await.unwrap();

    // Authorize: the bearer scheme's value, applied, and the dialog closed.
    let authorize = async {
        click(&page, ".auth-wrapper .btn.authorize").await?;
        type_into(&page, "#auth-bearer-value", ADMIN_KEY).await?;
        click(&page, "form:has(#auth-bearer-value) button.authorize").await?;
        // Applied: the value is masked and the button offers to log out.
        wait_for(
            &page,
            ".modal-ux button[aria-label=\"Remove authorization\"]",
        )
        .await?;
        click(&page, ".modal-ux .btn-done").await?;
        wait_for(&page, ".auth-wrapper .btn.authorize.locked").await
    };
    let authorized = tokio::time::timeout(2 * WAIT, authorize)
        .await
        .unwrap_or_else(|_| Err(format!("still authorising after {:?}", 2 * WAIT)));
    if let Err(err) = authorized {
        panic!("authorising through the dialog: {err}");
    }

    let mut failures = Vec::new();
    for (i, operation) in operations.iter().enumerate() {
        // A made-up id of the usual shape (a ULID), different for each operation.
        let value = format!("01JSWAGGERUI{i:014}");
        let tried = tokio::time::timeout(
            2 * WAIT,
            try_out(&page, &mut requests, operation, &value, &upload),
        )
        .await
        .unwrap_or_else(|_| Err(format!("still trying after {:?}", 2 * WAIT)));
        if let Err(err) = tried {
            failures.push(format!("{}: {err}", operation.name()));
        }
    }

    browser.close().await.ok();
    browser.wait().await.ok();
    driver.abort();
    assert!(
        failures.is_empty(),
        "Try it out did not send what it shows:\n{}",
        failures.join("\n")
    );
}
