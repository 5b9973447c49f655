//! The job state machine, called directly on a real database of each kind: which transitions
//! each worker may make, which it may not, and exactly which outbox rows each one writes.
//! The end-to-end tests reach these functions only through spawned binaries and timing; here
//! every interleaving is spelled out.

#[macro_use]
mod support;

use std::collections::BTreeMap;

use warble_jobs::db::Database;
use warble_jobs::error_code::ErrorCode;
use warble_jobs::job::{self, Cancel, JobError, JobStatus, StoredJob};
use warble_jobs::webhook::{self, Event, outbox};

on_both_databases!(
    a_job_runs_from_queued_to_succeeded,
    a_result_after_cancel_is_refused,
    only_a_final_jobs_data_is_deleted_and_only_once,
    a_takeover_drops_the_first_workers_writes,
    out_of_attempts_fails_the_job_whoever_holds_it,
);

const TENANT: &str = "acme";
const CALLBACK: &str = "https://example.com/hooks/job";

/// An outbox row: its event and where it goes (an endpoint's name, or `callback`).
type Row = (&'static str, &'static str);

/// The endpoints of [`TENANT`] and one of another tenant, which must hear nothing.
struct Endpoints {
    /// Webhook id to the name the expected rows use.
    names: BTreeMap<String, &'static str>,
}

impl Endpoints {
    async fn register(db: &Database) -> Self {
        let mut names = BTreeMap::new();
        for (name, tenant, events) in [
            ("all", TENANT, &Event::ALL[..]),
            ("failures", TENANT, &[Event::JobFailed][..]),
            ("other tenant", "globex", &Event::ALL[..]),
        ] {
            let url = format!("https://example.com/hooks/{}", name.replace(' ', "-"));
            let (hook, _) = webhook::create(db, tenant, &url, events, None)
                .await
                .unwrap()
                .unwrap();
            names.insert(hook.id, name);
        }
        Self { names }
    }

    /// The job's outbox rows, sorted.
    async fn rows(&self, db: &Database, job_id: &str) -> Vec<Row> {
        let all = outbox::list(db, None, None, None, None, None, 100)
            .await
            .unwrap();
        let mut rows: Vec<Row> = all
            .iter()
            .filter(|d| d.job_id == job_id)
            .map(|d| {
                let destination = match &d.webhook_id {
                    Some(id) => self.names[id],
                    None => {
                        assert_eq!(d.url, CALLBACK);
                        "callback"
                    }
                };
                (d.event.as_str(), destination)
            })
            .collect();
        rows.sort();
        rows
    }
}

/// A queued job of [`TENANT`] with a callback URL.
async fn queued(db: &Database) -> String {
    let job = support::queued(db, TENANT, Some(CALLBACK)).await;
    assert_eq!(job.status, JobStatus::Queued);
    assert_eq!(job.attempts, 0);
    job.id
}

async fn get(db: &Database, id: &str) -> StoredJob {
    job::get(db, id, None).await.unwrap().unwrap()
}

/// A job error whose message says which step of the test made it.
fn error(step: &str) -> JobError {
    JobError::new(ErrorCode::TranscriptionFailed, format!("{step} in a test"))
}

/// The rows of a first start: `job.started` goes to the endpoints that want it, never to
/// the callback URL.
const STARTED: [Row; 1] = [("job.started", "all")];

/// The rows of a job that started once and then ended with the final `event`: that event
/// goes to the endpoints that want it and to the callback URL. Sorted like
/// [`Endpoints::rows`].
fn started_then(event: Event) -> Vec<Row> {
    let name = event.as_str();
    let mut rows = vec![STARTED[0], (name, "all"), (name, "callback")];
    if event == Event::JobFailed {
        rows.push((name, "failures"));
    }
    rows.sort();
    rows
}

/// The endpoints, and a job that w1 has started.
async fn running(db: &Database) -> (Endpoints, String) {
    let endpoints = Endpoints::register(db).await;
    let id = queued(db).await;
    job::start(db, &id, "w1").await.unwrap().unwrap();
    assert_eq!(endpoints.rows(db, &id).await, STARTED);
    (endpoints, id)
}

async fn a_job_runs_from_queued_to_succeeded(db: Database) {
    let endpoints = Endpoints::register(&db).await;
    let id = queued(&db).await;
    assert_eq!(endpoints.rows(&db, &id).await, []);

    let started = job::start(&db, &id, "w1").await.unwrap().unwrap();
    assert_eq!(started.job.status, JobStatus::Running);
    assert_eq!(started.job.attempts, 1);
    assert!(started.job.started_at.is_some());
    assert_eq!(endpoints.rows(&db, &id).await, STARTED);

    assert!(
        warble_jobs::quota::reconcile(&db, &id, "w1", 12.25)
            .await
            .unwrap()
    );
    let eta = chrono::Utc::now() + chrono::Duration::seconds(30);
    assert!(job::progress(&db, &id, "w1", 0.5, Some(eta)).await.unwrap());
    let running = get(&db, &id).await.job;
    assert_eq!(running.progress, 0.5);
    assert_eq!(running.duration, Some(12.25));
    // Stored to the microsecond (Postgres), shown while the job runs.
    let shown = running.estimated_completion_at.expect("an estimate");
    assert!((shown - eta).num_milliseconds().abs() < 1, "{shown} {eta}");

    assert!(
        job::succeed(&db, &id, "w1", r#"{"text":"hi"}"#)
            .await
            .unwrap()
    );
    let done = get(&db, &id).await.job;
    assert_eq!(done.status, JobStatus::Succeeded);
    assert_eq!(done.progress, 1.0);
    assert!(done.finished_at.is_some());
    assert_eq!(done.estimated_completion_at, None);
    assert_eq!(
        job::transcript(&db, &id, Some(TENANT)).await.unwrap(),
        Some((JobStatus::Succeeded, Some(r#"{"text":"hi"}"#.into())))
    );
    let expected = started_then(Event::JobSucceeded);
    assert_eq!(endpoints.rows(&db, &id).await, expected);

    // The queue delivers the finished job again: nothing changes, nothing more is sent.
    assert!(job::start(&db, &id, "w2").await.unwrap().is_none());
    assert!(!job::succeed(&db, &id, "w1", "{}").await.unwrap());
    assert!(!job::fail(&db, &id, None, &error("late")).await.unwrap());
    assert_eq!(get(&db, &id).await.job.status, JobStatus::Succeeded);
    assert_eq!(endpoints.rows(&db, &id).await, expected);
}

async fn a_result_after_cancel_is_refused(db: Database) {
    let (endpoints, id) = running(&db).await;
    let Some(Cancel::Canceled(canceled)) = job::cancel(&db, &id, Some(TENANT)).await.unwrap()
    else {
        panic!("a running job is canceled");
    };
    assert_eq!(canceled.job.status, JobStatus::Canceled);
    assert!(canceled.job.finished_at.is_some());
    // Another tenant cannot cancel it: for them it does not exist.
    assert!(
        job::cancel(&db, &id, Some("globex"))
            .await
            .unwrap()
            .is_none()
    );

    // The worker learns it from its next write, which is refused.
    assert!(!job::progress(&db, &id, "w1", 0.9, None).await.unwrap());
    assert!(!job::succeed(&db, &id, "w1", "{}").await.unwrap());
    assert!(
        !job::fail(&db, &id, Some("w1"), &error("late"))
            .await
            .unwrap()
    );
    assert!(job::start(&db, &id, "w2").await.unwrap().is_none());
    let job = get(&db, &id).await.job;
    assert_eq!(job.status, JobStatus::Canceled);
    assert_eq!(job.error, None);
    assert_eq!(
        job::transcript(&db, &id, None).await.unwrap(),
        Some((JobStatus::Canceled, None))
    );
    assert_eq!(
        endpoints.rows(&db, &id).await,
        started_then(Event::JobCanceled)
    );

    // Canceling again changes nothing and sends nothing.
    let again = job::cancel(&db, &id, None).await.unwrap();
    assert!(
        matches!(&again, Some(Cancel::AlreadyCanceled(j)) if j.job.finished_at == job.finished_at),
        "{again:?}"
    );
    assert_eq!(
        endpoints.rows(&db, &id).await,
        started_then(Event::JobCanceled)
    );
}

async fn a_takeover_drops_the_first_workers_writes(db: Database) {
    let (endpoints, id) = running(&db).await;
    // w1 stopped beating; w2 gets the job again from the queue.
    let taken = job::start(&db, &id, "w2").await.unwrap().unwrap();
    assert_eq!(taken.job.attempts, 2);
    assert_eq!(taken.job.progress, 0.0);
    // A retry after a lost worker is not news.
    assert_eq!(endpoints.rows(&db, &id).await, STARTED);

    // w1 comes back: each of its writes is refused.
    assert!(!job::progress(&db, &id, "w1", 0.9, None).await.unwrap());
    assert!(
        !job::succeed(&db, &id, "w1", r#"{"by":"w1"}"#)
            .await
            .unwrap()
    );
    assert!(!job::fail(&db, &id, Some("w1"), &error("w1")).await.unwrap());
    let job = get(&db, &id).await.job;
    assert_eq!(job.status, JobStatus::Running);
    assert_eq!(job.progress, 0.0);
    assert_eq!(endpoints.rows(&db, &id).await, STARTED);

    assert!(job::progress(&db, &id, "w2", 0.5, None).await.unwrap());
    assert!(
        job::succeed(&db, &id, "w2", r#"{"by":"w2"}"#)
            .await
            .unwrap()
    );
    assert_eq!(
        job::transcript(&db, &id, None).await.unwrap(),
        Some((JobStatus::Succeeded, Some(r#"{"by":"w2"}"#.into())))
    );
    assert_eq!(get(&db, &id).await.job.attempts, 2);
    assert_eq!(
        endpoints.rows(&db, &id).await,
        started_then(Event::JobSucceeded)
    );
}

async fn out_of_attempts_fails_the_job_whoever_holds_it(db: Database) {
    let (endpoints, id) = running(&db).await;
    job::start(&db, &id, "w2").await.unwrap().unwrap();
    // A worker that finds the job out of attempts fails it with no worker id: it goes,
    // whoever holds it now (w2), where w1's own failure is refused.
    let too_many = JobError::new(ErrorCode::TooManyAttempts, "out of attempts in a test");
    assert!(!job::fail(&db, &id, Some("w1"), &too_many).await.unwrap());
    assert!(job::fail(&db, &id, None, &too_many).await.unwrap());

    let job = get(&db, &id).await.job;
    assert_eq!(job.status, JobStatus::Failed);
    assert_eq!(job.error, Some(too_many.clone()));
    assert!(job.finished_at.is_some());
    let expected = started_then(Event::JobFailed);
    assert_eq!(endpoints.rows(&db, &id).await, expected);

    // Failed is final, for the holder, for a second verdict and for a client's cancel.
    assert!(!job::succeed(&db, &id, "w2", "{}").await.unwrap());
    assert!(!job::progress(&db, &id, "w2", 0.5, None).await.unwrap());
    assert!(!job::fail(&db, &id, None, &error("again")).await.unwrap());
    assert!(job::start(&db, &id, "w3").await.unwrap().is_none());
    let cancel = job::cancel(&db, &id, None).await.unwrap();
    assert!(matches!(cancel, Some(Cancel::Finished(_))), "{cancel:?}");
    let job = get(&db, &id).await.job;
    assert_eq!(job.status, JobStatus::Failed);
    assert_eq!(job.error, Some(too_many));
    assert_eq!(endpoints.rows(&db, &id).await, expected);
}

async fn only_a_final_jobs_data_is_deleted_and_only_once(db: Database) {
    let (_endpoints, id) = running(&db).await;
    // A worker holds it: its data stays until it is canceled.
    assert!(job::delete(&db, &id, None).await.unwrap().is_none());
    assert!(
        job::succeed(&db, &id, "w1", r#"{"text":"hi"}"#)
            .await
            .unwrap()
    );

    // Another tenant's delete finds nothing; the owner's drops the transcript, once.
    assert!(
        job::delete(&db, &id, Some("globex"))
            .await
            .unwrap()
            .is_none()
    );
    let deleted = job::delete(&db, &id, Some(TENANT)).await.unwrap().unwrap();
    assert_eq!(deleted.job.status, JobStatus::Succeeded);
    let at = deleted.job.deleted_at.expect("deleted_at is set");
    assert_eq!(
        job::transcript(&db, &id, None).await.unwrap(),
        Some((JobStatus::Succeeded, None))
    );
    assert!(job::delete(&db, &id, None).await.unwrap().is_none());
    assert_eq!(get(&db, &id).await.job.deleted_at, Some(at));
}
