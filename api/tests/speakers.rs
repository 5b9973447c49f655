//! Speaker labels and PII redaction through the real API and worker (issue 19), on SQLite and
//! Postgres: the fixture Sortformer (`tools/fixtures/train_sortformer.py`) labels the words of
//! a two- and a three-speaker espeak conversation, and the word diarization error rate (WDER:
//! the share of words given the wrong speaker, under the best mapping of labels to the
//! script's speakers) is measured against the script and reported; JSON, SRT and VTT carry the
//! speakers; a job without the option is unchanged. A spoken phone number is redacted in every
//! format, and the database holds no unredacted text.

#[macro_use]
mod common;

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use common::{Api, Backends, fixture, start_worker_with};
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
    let mut labels: Vec<String> = pairs.iter().map(|(h, _)| h.clone()).collect();
    labels.sort();
    labels.dedup();
    let mut truths: Vec<String> = pairs.iter().map(|(_, t)| t.clone()).collect();
    truths.sort();
    truths.dedup();
    // Best one-to-one mapping, by trying every assignment (at most 4 labels).
    fn best(
        labels: &[String],
        truths: &[String],
        used: &mut Vec<bool>,
        map: &mut HashMap<String, String>,
        pairs: &[(String, String)],
    ) -> usize {
        if map.len() == labels.len() {
            return pairs.iter().filter(|(h, t)| map.get(h) == Some(t)).count();
        }
        let label = &labels[map.len()];
        let mut top = 0;
        for (i, truth) in truths.iter().enumerate() {
            if !used[i] {
                used[i] = true;
                map.insert(label.clone(), truth.clone());
                top = top.max(best(labels, truths, used, map, pairs));
                map.remove(label);
                used[i] = false;
            }
        }
        // A label left unmapped (more labels than speakers) scores nothing.
        map.insert(label.clone(), String::new());
        top = top.max(best(labels, truths, used, map, pairs));
        map.remove(label);
        top
    }
    let right = best(
        &labels,
        &truths,
        &mut vec![false; truths.len()],
        &mut HashMap::new(),
        &pairs,
    );
    (1.0 - right as f64 / pairs.len().max(1) as f64, pairs.len())
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
        eprintln!(
            "{model}, {stem}: {speakers} speakers in the script, labels {labels:?}, WDER {rate:.3} over {scored} words"
        );
        assert!(rate <= bar, "{model}, {stem}: WDER {rate:.3}");
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
    let diarizer = fixture("models/sortformer_streaming.nemo");
    let _worker = start_worker_with(
        &api,
        &backends,
        &[("WARBLE_DIARIZATION_MODEL", diarizer.to_str().unwrap())],
    )
    .await;

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
