//! Speaker labels and PII redaction through the real API and worker (issue 19), on SQLite and
//! Postgres: each fixture Sortformer (`tools/fixtures/train_sortformer.py`, offline and
//! streaming) labels the words of a two- and a three-speaker espeak conversation; the word
//! diarization error rate (WDER: the share of words given the wrong speaker, under the best
//! mapping of labels to the script's speakers) and the DER of the utterances are measured
//! against the script and reported; JSON, SRT and VTT carry the speakers; a job without the
//! option is unchanged. A spoken phone number is redacted in every
//! format, and the database holds no unredacted text.

#[macro_use]
mod common;

use std::path::Path;
use std::time::Duration;

use common::{Api, Backends, fixture, start_worker, start_worker_with};
use serde_json::Value;
use warble_jobs::config::DatabaseArgs;
use warble_jobs::db::Database;

on_both_databases!(speakers_are_labelled_and_pii_never_stored);

const WAIT: Duration = Duration::from_secs(120);

/// The speaker the script says was talking at `t` seconds, if one was.
fn truth_at(script: &Value, t: f64) -> Option<String> {
    script["utterances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["start"].as_f64().unwrap() <= t && t <= u["end"].as_f64().unwrap())
        .map(|u| u["speaker"].as_str().unwrap().to_string())
}

/// The largest total of `co[h][t]` over one-to-one pairings of hypothesis labels `h` with
/// truth speakers `t` (a label may stay unpaired), by trying them all (at most 4 x 4).
fn best_pairing(co: &[Vec<f64>]) -> f64 {
    fn go(co: &[Vec<f64>], h: usize, used: &mut Vec<bool>) -> f64 {
        if h == co.len() {
            return 0.0;
        }
        let mut top = go(co, h + 1, used);
        for t in 0..used.len() {
            if !used[t] {
                used[t] = true;
                top = top.max(co[h][t] + go(co, h + 1, used));
                used[t] = false;
            }
        }
        top
    }
    let truths = co.first().map_or(0, Vec::len);
    go(co, 0, &mut vec![false; truths])
}

/// The distinct names in `names`, sorted, and the index of each name.
fn index(names: impl Iterator<Item = String>) -> (Vec<String>, impl Fn(&str) -> usize) {
    let mut all: Vec<String> = names.collect();
    all.sort();
    all.dedup();
    let lookup = all.clone();
    (all, move |name: &str| {
        lookup.iter().position(|n| n == name).unwrap()
    })
}

/// WDER of `words` (each with a `speaker`) against `script`: words said while no one in the
/// script speaks are not scored; labels map to script speakers one to one, the best way.
fn wder(words: &[Value], script: &Value) -> (f64, usize) {
    let pairs: Vec<(String, String)> = words
        .iter()
        .filter_map(|w| {
            let mid = (w["start"].as_f64().unwrap() + w["end"].as_f64().unwrap()) / 2.0;
            truth_at(script, mid).map(|truth| (w["speaker"].as_str().unwrap().to_string(), truth))
        })
        .collect();
    let (labels, label) = index(pairs.iter().map(|(h, _)| h.clone()));
    let (truths, truth) = index(pairs.iter().map(|(_, t)| t.clone()));
    let mut co = vec![vec![0.0; truths.len()]; labels.len()];
    for (h, t) in &pairs {
        co[label(h)][truth(t)] += 1.0;
    }
    let right = best_pairing(&co);
    (1.0 - right / pairs.len().max(1) as f64, pairs.len())
}

/// Turns `(start, end, speaker)` of a list of `{start, end, speaker}` objects.
fn turns(list: &Value) -> Vec<(f64, f64, String)> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["start"].as_f64().unwrap(),
                u["end"].as_f64().unwrap(),
                u["speaker"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// DER of the transcript's utterances against the script, as NIST scores it: 10 ms frames,
/// no scoring within 0.25 s of a reference boundary, overlap scored, the best one-to-one
/// mapping of speakers; (missed + false alarm + confusion) / reference speech.
fn der(hyp: &[(f64, f64, String)], reference: &[(f64, f64, String)]) -> f64 {
    const STEP: f64 = 0.01;
    let frame = |t: f64| (t / STEP).round() as usize;
    let end = hyp
        .iter()
        .chain(reference)
        .map(|t| frame(t.1))
        .max()
        .unwrap_or(0)
        + 1;
    let mut scored = vec![true; end];
    for &(start, stop, _) in reference {
        for boundary in [frame(start), frame(stop)] {
            let (from, to) = (boundary.saturating_sub(25), (boundary + 25).min(end));
            scored[from..to].iter_mut().for_each(|s| *s = false);
        }
    }
    let activity = |turns: &[(f64, f64, String)]| {
        let (names, at) = index(turns.iter().map(|t| t.2.clone()));
        let mut active = vec![vec![false; end]; names.len()];
        for (start, stop, name) in turns {
            active[at(name)][frame(*start)..frame(*stop)]
                .iter_mut()
                .for_each(|a| *a = true);
        }
        active
    };
    let (h, r) = (activity(hyp), activity(reference));
    let count = |active: &[Vec<bool>], i: usize| active.iter().filter(|a| a[i]).count();
    let co: Vec<Vec<f64>> = h
        .iter()
        .map(|hs| {
            r.iter()
                .map(|rs| (0..end).filter(|&i| scored[i] && hs[i] && rs[i]).count() as f64)
                .collect()
        })
        .collect();
    let (mut total, mut errors) = (0.0, 0.0);
    for i in (0..end).filter(|&i| scored[i]) {
        let (nr, nh) = (count(&r, i) as f64, count(&h, i) as f64);
        total += nr;
        errors += nr.max(nh);
    }
    // max(nr, nh) per frame = missed + false alarm + both-active; the mapping's matches are
    // the only frames that are right.
    (errors - best_pairing(&co)) / total.max(1.0)
}

async fn transcript(api: &Api, id: &str, format: &str) -> String {
    let response = api
        .get(&format!("/v1/jobs/{id}/transcript?format={format}"))
        .await;
    assert_eq!(response.status(), 200);
    response.text().await.unwrap()
}

async fn run(api: &Api, file: &Path, fields: &[(&str, &str)]) -> String {
    let response = api.submit(file, fields, None).await;
    assert_eq!(response.status(), 202, "{:?}", response.text().await);
    let job: Value = response.json().await.unwrap();
    let id = job["id"].as_str().unwrap().to_string();
    let done = api.wait_final(&id, WAIT).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    id
}

/// Two- and three-speaker conversations get a speaker on every word, split segments,
/// utterances and speakers in SRT and VTT, with at most `bars` of their words (WDER) given
/// the wrong speaker.
async fn labels_speakers(api: &Api, model: &str, bars: [f64; 2]) {
    for ((stem, speakers), bar) in [("conv2_a", 2), ("conv3_a", 3)].into_iter().zip(bars) {
        let audio = fixture(&format!("audio/{stem}.wav"));
        let script: Value = serde_json::from_str(
            &std::fs::read_to_string(fixture(&format!("audio/{stem}.json"))).unwrap(),
        )
        .unwrap();
        let id = run(api, &audio, &[("speaker_labels", "true")]).await;
        let job = api.get_json(&format!("/v1/jobs/{id}")).await;
        assert_eq!(job["speaker_labels"], true);
        let body: Value = serde_json::from_str(&transcript(api, &id, "json").await).unwrap();
        let words = body["words"].as_array().unwrap();
        assert!(!words.is_empty());
        assert!(words.iter().all(|w| w["speaker"].is_string()), "{body}");
        let (rate, scored) = wder(words, &script);
        let labels: std::collections::BTreeSet<&str> = words
            .iter()
            .map(|w| w["speaker"].as_str().unwrap())
            .collect();
        let der = der(&turns(&body["utterances"]), &turns(&script["utterances"]));
        eprintln!(
            "{model}, {stem}: {speakers} speakers in the script, labels {labels:?}, WDER {rate:.3} \
             over {scored} words, DER of the utterances {der:.3}"
        );
        assert!(rate <= bar, "{model}, {stem}: WDER {rate:.3}");
        // Utterances span the gaps between one speaker's words and end where the ASR model's
        // words end, so their DER is well above the model's own (tools/fixtures/README.md).
        assert!(der <= 0.5, "{model}, {stem}: DER {der:.3}");
        // Segments never mix speakers; utterances are the runs of one speaker's words.
        let utterances = body["utterances"].as_array().unwrap();
        assert!(utterances.len() >= 2, "{body}");
        for segment in body["segments"].as_array().unwrap() {
            assert!(segment["speaker"].is_string(), "{segment}");
        }
        let joined: Vec<&str> = utterances
            .iter()
            .map(|u| u["text"].as_str().unwrap())
            .collect();
        assert_eq!(joined.join(" "), body["text"].as_str().unwrap());
        let srt = transcript(api, &id, "srt").await;
        assert!(srt.contains("Speaker A: "), "{srt}");
        let vtt = transcript(api, &id, "vtt").await;
        assert!(vtt.contains("<v Speaker A>"), "{vtt}");
    }
}

async fn speakers_are_labelled_and_pii_never_stored(backends: Backends, _dir: &Path) {
    let api = Api::start(&backends);
    // Each fixture model in turn, with the WDER it reaches on each file (see the output).
    for (model, bars) in [
        ("sortformer_offline", [0.10, 0.35]),
        ("sortformer_streaming", [0.45, 0.45]),
    ] {
        let diarizer = fixture(&format!("models/{model}.nemo"));
        let worker = start_worker_with(
            &api,
            &backends,
            &[("WARBLE_DIARIZATION_MODEL", diarizer.to_str().unwrap())],
        )
        .await;
        labels_speakers(&api, model, bars).await;
        drop(worker);
    }
    // A worker without a diarization model fails a speaker_labels job at once, saying so.
    {
        let _plain = start_worker(&api, &backends).await;
        let response = api
            .submit(
                &fixture("audio/conv2_a.wav"),
                &[("speaker_labels", "true")],
                None,
            )
            .await;
        let job: Value = response.json().await.unwrap();
        let done = api.wait_final(job["id"].as_str().unwrap(), WAIT).await;
        assert_eq!(done["status"], "failed", "{done}");
        assert_eq!(done["error"]["code"], "unsupported", "{done}");
        assert!(
            done["error"]["message"]
                .as_str()
                .unwrap()
                .contains("WARBLE_DIARIZATION_MODEL")
        );
        assert!(
            done["progress"].as_f64().unwrap() < 0.5,
            "failed before transcribing: {done}"
        );
    }
    let diarizer = fixture("models/sortformer_streaming.nemo");
    let _worker = start_worker_with(
        &api,
        &backends,
        &[("WARBLE_DIARIZATION_MODEL", diarizer.to_str().unwrap())],
    )
    .await;

    // Batch results serve the transcript as the job's route does: with the speakers' view.
    let form = reqwest::multipart::Form::new()
        .text("speaker_labels", "true")
        .part(
            "file",
            reqwest::multipart::Part::bytes(std::fs::read(fixture("audio/conv2_a.wav")).unwrap())
                .file_name("conv2_a.wav")
                .mime_str("audio/wav")
                .unwrap(),
        );
    let response = api
        .client
        .post(api.url("/v1/batches"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let batch: Value = response.json().await.unwrap();
    let batch_id = batch["id"].as_str().unwrap();
    let deadline = std::time::Instant::now() + WAIT;
    while api.get_json(&format!("/v1/batches/{batch_id}")).await["status"] != "completed" {
        assert!(
            std::time::Instant::now() < deadline,
            "the batch did not complete"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let results = api
        .get(&format!("/v1/batches/{batch_id}/results"))
        .await
        .text()
        .await
        .unwrap();
    let line: Value = serde_json::from_str(results.lines().next().unwrap()).unwrap();
    assert!(line["transcript"]["utterances"].is_array(), "{line}");
    assert!(
        line["transcript"]["segments"][0]["speaker"].is_string(),
        "{line}"
    );

    // Without the option: no speakers anywhere.
    let plain = run(&api, &fixture("audio/conv2_a.wav"), &[]).await;
    let body = transcript(&api, &plain, "json").await;
    assert!(
        !body.contains("speaker") && !body.contains("utterances"),
        "{body}"
    );
    assert!(!transcript(&api, &plain, "vtt").await.contains("<v "));

    // Bad options are refused before anything is made.
    for (fields, message) in [
        (vec![("speakers_expected", "2")], "speaker_labels"),
        (
            vec![("speaker_labels", "true"), ("speakers_expected", "9")],
            "1 to 4",
        ),
        (
            vec![
                ("redact_pii", "true"),
                ("redact_pii_policies", "person_name"),
            ],
            "person_name",
        ),
        (vec![("redact_pii_sub", "hash")], "redact_pii=true"),
    ] {
        let response = api
            .submit(&fixture("audio/conv2_a.wav"), &fields, None)
            .await;
        assert_eq!(response.status(), 400, "{fields:?}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalid_option", "{body}");
        assert!(
            body["error"]["message"].as_str().unwrap().contains(message),
            "{body}"
        );
    }

    // The JSON form refuses bad values the same way.
    for (body, message) in [
        (
            serde_json::json!({"redact_pii": true, "redact_pii_policies": ["nope"]}),
            "nope",
        ),
        (
            serde_json::json!({"speaker_labels": true, "speakers_expected": "two"}),
            "1 to 4",
        ),
        (
            serde_json::json!({"redact_pii": true, "redact_pii_sub": "stars"}),
            "entity_name or hash",
        ),
        (
            serde_json::json!({"redact_pii": true, "redact_pii_policies": [1]}),
            "policy names",
        ),
    ] {
        let mut body = body;
        body["audio_url"] = "http://127.0.0.1:9/a.wav".into();
        let response = api
            .client
            .post(api.url("/v1/jobs"))
            .json(&body)
            .send()
            .await
            .unwrap();
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"]["code"], "invalid_option", "{body}: {error}");
        assert!(
            error["error"]["message"]
                .as_str()
                .unwrap()
                .contains(message),
            "{error}"
        );
    }

    // A repeated Idempotency-Key with other redaction settings is refused, not replayed.
    let key = "speakers-test-replay";
    let first = api
        .submit(&fixture("audio/pii_phone.wav"), &[], Some(key))
        .await;
    assert_eq!(first.status(), 202);
    let again = api
        .submit(&fixture("audio/pii_phone.wav"), &[], Some(key))
        .await;
    assert_eq!(again.status(), 202, "the same request is a replay");
    let changed = api
        .submit(
            &fixture("audio/pii_phone.wav"),
            &[("redact_pii", "true")],
            Some(key),
        )
        .await;
    assert_eq!(changed.status(), 422);
    let error: Value = changed.json().await.unwrap();
    assert_eq!(error["error"]["code"], "idempotency_key_reused", "{error}");

    // Redaction: the spoken phone number is gone from every format and from the database.
    let pii = fixture("audio/pii_phone.wav");
    let spoken = ["two one two", "three four one two"];
    let unredacted = run(&api, &pii, &[]).await;
    let text = transcript(&api, &unredacted, "text").await;
    assert!(
        spoken.iter().all(|s| text.contains(s)),
        "the fixture model hears the digits: {text}"
    );
    let redacted = run(
        &api,
        &pii,
        &[
            ("redact_pii", "true"),
            ("redact_pii_policies", "phone_number"),
        ],
    )
    .await;
    for format in ["json", "text", "srt", "vtt"] {
        let body = transcript(&api, &redacted, format).await;
        assert!(body.contains("[PHONE_NUMBER]"), "{format}: {body}");
        assert!(!spoken.iter().any(|s| body.contains(s)), "{format}: {body}");
    }
    let hashed = run(
        &api,
        &pii,
        &[("redact_pii", "true"), ("redact_pii_sub", "hash")],
    )
    .await;
    assert!(transcript(&api, &hashed, "text").await.contains("###"));
    let db = Database::connect(&DatabaseArgs {
        database_url: backends.database_url.clone(),
        database_max_connections: 1,
    })
    .await
    .unwrap();
    for id in [&redacted, &hashed] {
        let (stored,): (Option<String>,) = warble_jobs::with_pool!(&db, pool => {
            sqlx::query_as("SELECT transcript FROM warble_jobs WHERE id = $1")
                .bind(id)
                .fetch_one(pool)
                .await
                .unwrap()
        });
        let stored = stored.unwrap();
        assert!(
            !spoken.iter().any(|s| stored.contains(s)),
            "stored: {stored}"
        );
    }
}
