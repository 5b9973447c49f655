//! Keys, roles and tenants against the running API: every refusal has its status and code
//! and changes nothing.

mod common;

use std::path::Path;
use std::process::Command;

use common::{ADMIN_KEY, Api, Backends, error_of, fixture, make_key};
use serde_json::{Value, json};

on_both_databases!(
    credentials_are_checked_and_refusals_change_nothing,
    tenants_see_only_their_own_jobs,
    users_cannot_use_admin_routes,
    admin_actions_are_audited,
);

async fn credentials_are_checked_and_refusals_change_nothing(backends: Backends, _dir: &Path) {
    let api = Api::start(&backends);
    let (id, secret) = make_key(&api, "revoked soon", "user", None).await;
    let response = api.delete(&format!("/v1/keys/{id}")).await;
    assert_eq!(response.status(), 200);

    let raw = reqwest::Client::new();
    // A small body: a refused request's body is read (up to 1 MiB) before the answer, so the
    // client reads the refusal; past that, a client still sending sees the connection close.
    let file = std::fs::read(fixture("audio/tts_us_m6.wav")).unwrap()[..8192].to_vec();
    let cases: Vec<(&str, Vec<(&str, String)>)> = vec![
        ("no header", vec![]),
        ("empty bearer", vec![("authorization", "Bearer ".into())]),
        ("empty X-API-Key", vec![("x-api-key", "".into())]),
        (
            "Basic",
            vec![("authorization", "Basic YWRtaW46YWRtaW4=".into())],
        ),
        ("bare key", vec![("authorization", ADMIN_KEY.into())]),
        (
            "headers disagree",
            vec![
                ("authorization", format!("Bearer {ADMIN_KEY}")),
                ("x-api-key", format!("{ADMIN_KEY}x")),
            ],
        ),
        (
            "wrong length",
            vec![("authorization", format!("Bearer {}", &ADMIN_KEY[..20]))],
        ),
        ("too long", vec![("x-api-key", "k".repeat(100_000))]),
        (
            "revoked",
            vec![("authorization", format!("Bearer {secret}"))],
        ),
    ];
    for (name, headers) in cases {
        let form = reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(file.clone()).file_name("a.wav"),
        );
        let mut request = raw.post(api.url("/v1/jobs")).multipart(form);
        for (header, value) in &headers {
            request = request.header(*header, value);
        }
        let response = request.send().await.unwrap();
        let challenge = response.headers().get("www-authenticate").cloned();
        let got = error_of(response).await;
        println!("{name}: {got:?}");
        assert_eq!(got, (401, "unauthorized".into()), "{name}");
        assert_eq!(challenge.unwrap(), "Bearer", "{name}");
        let response = raw.get(api.url("/v1/jobs")).send().await.unwrap();
        assert_eq!(response.status(), 401);
    }
    // Nothing was recorded or stored; the probes and the docs need no key.
    let page = api.get_json("/v1/jobs").await;
    assert_eq!(page["jobs"].as_array().unwrap().len(), 0);
    assert_eq!(backends.stored_objects(), 0);
    for public in ["/health", "/ready", "/openapi.json", "/docs/"] {
        let response = raw.get(api.url(public)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{public}");
    }
    // X-API-Key works as well as the bearer header, and both may be sent if they agree.
    let response = raw
        .get(api.url("/v1/jobs"))
        .header("x-api-key", ADMIN_KEY)
        .header("authorization", format!("Bearer {ADMIN_KEY}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

async fn tenants_see_only_their_own_jobs(backends: Backends, _dir: &Path) {
    let mut api = Api::start(&backends);
    let (_, alice) = make_key(&api, "alice", "user", None).await;
    let (_, bob) = make_key(&api, "bob", "user", None).await;
    let (_, alice2) = make_key(&api, "alice's second key", "user", None).await;
    let file = fixture("audio/tts_us_m6.wav");

    api.act_as(&alice);
    let job: Value = api
        .submit(&file, &[], Some("same-key"))
        .await
        .json()
        .await
        .unwrap();
    let id = job["id"].as_str().unwrap().to_string();
    assert!(job["tenant"].is_string());

    // Bob: Alice's job does not exist for him, and his attempts change nothing.
    api.act_as(&bob);
    for path in [
        format!("/v1/jobs/{id}"),
        format!("/v1/jobs/{id}/transcript"),
    ] {
        assert_eq!(
            error_of(api.get(&path).await).await,
            (404, "not_found".into()),
            "{path}"
        );
    }
    let response = api.delete(&format!("/v1/jobs/{id}")).await;
    assert_eq!(error_of(response).await, (404, "not_found".into()));
    let page = api.get_json("/v1/jobs").await;
    assert_eq!(page["jobs"].as_array().unwrap().len(), 0);
    // The same Idempotency-Key from another tenant is another request.
    let bobs: Value = api
        .submit(&file, &[], Some("same-key"))
        .await
        .json()
        .await
        .unwrap();
    assert_ne!(bobs["id"], job["id"]);

    // Alice still has her job, queued, with its audio; a key of another tenant is a stranger
    // too (each key made without a tenant gets its own).
    api.act_as(&alice);
    let again = api.get_json(&format!("/v1/jobs/{id}")).await;
    assert_eq!(again["status"], "queued");
    assert_eq!(backends.stored_objects(), 2);
    api.act_as(&alice2);
    assert_eq!(
        error_of(api.get(&format!("/v1/jobs/{id}")).await).await.0,
        404
    );

    // The admin sees both tenants' jobs.
    api.act_as(ADMIN_KEY);
    let page = api.get_json("/v1/jobs").await;
    assert_eq!(page["jobs"].as_array().unwrap().len(), 2);
}

async fn users_cannot_use_admin_routes(backends: Backends, _dir: &Path) {
    let mut api = Api::start(&backends);
    let (admin_id, _) = make_key(&api, "another admin", "admin", None).await;
    let (_, user) = make_key(&api, "user", "user", None).await;
    api.act_as(&user);
    let calls = [
        api.client.get(api.url("/v1/keys")),
        api.client
            .post(api.url("/v1/keys"))
            .json(&json!({"name": "x", "role": "admin"})),
        api.client.delete(api.url(&format!("/v1/keys/{admin_id}"))),
        api.client.get(api.url("/v1/workers")),
        api.client
            .put(api.url(&format!("/v1/keys/{admin_id}/quotas")))
            .json(&json!({"concurrent_jobs": null})),
        api.client
            .get(api.url(&format!("/v1/usage?key_id={admin_id}"))),
    ];
    for call in calls {
        let response = call.send().await.unwrap();
        assert_eq!(error_of(response).await, (403, "forbidden".into()));
    }
    // Nothing changed: still three live keys (the test admin, the other admin, the user).
    api.act_as(ADMIN_KEY);
    let keys: Value = api.get_json("/v1/keys").await;
    let live = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["revoked_at"].is_null())
        .count();
    assert_eq!(live, 3);
}

/// `api keys create|list|revoke` work on the database directly, for operators.
#[tokio::test(flavor = "multi_thread")]
async fn keys_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let backends = Backends::local(dir.path());
    let mut api = Api::start(&backends);
    let cli = |args: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_api"));
        backends.apply(&mut cmd);
        let output = cmd.arg("keys").args(args).output().unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    };
    let created: Value =
        serde_json::from_str(&cli(&["create", "--name", "ops", "--role", "user"])).unwrap();
    let secret = created["secret"].as_str().unwrap();
    assert!(secret.starts_with("wbl_") && secret.len() == 68);
    assert!(cli(&["list"]).contains("\"ops\""));
    assert!(!cli(&["list"]).contains(secret));
    api.act_as(secret);
    assert_eq!(api.get("/v1/jobs").await.status(), 200);
    cli(&["revoke", created["key"]["id"].as_str().unwrap()]);
    assert_eq!(
        error_of(api.get("/v1/jobs").await).await,
        (401, "unauthorized".into())
    );
}

/// Tokens: exchanged for a key, accepted like one, and every forged, stale or foreign token
/// refused.
#[tokio::test(flavor = "multi_thread")]
async fn tokens_stand_in_for_keys_and_forgeries_are_refused() {
    use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};

    const SECRET: &str = "test-jwt-secret-0123456789abcdef0123456789";
    let dir = tempfile::tempdir().unwrap();
    let mut backends = Backends::local(dir.path());
    backends
        .env
        .push(("WARBLE_JWT_SECRET".into(), SECRET.into()));
    let mut api = Api::start(&backends);
    let (_, user) = make_key(&api, "user", "user", Some("acme")).await;

    let token_for = |api: &Api| {
        let request = api.client.post(api.url("/v1/auth/token"));
        async move {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 200);
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["token_type"], "Bearer");
            assert_eq!(body["expires_in"], 900);
            body["access_token"].as_str().unwrap().to_string()
        }
    };
    let admin_token = token_for(&api).await;
    api.act_as(&user);
    let user_token = token_for(&api).await;

    // A token works wherever its key does, with the key's role.
    api.act_as(&user_token);
    assert_eq!(api.get("/v1/jobs").await.status(), 200);
    assert_eq!(
        error_of(api.get("/v1/keys").await).await,
        (403, "forbidden".into())
    );
    let again = api
        .client
        .post(api.url("/v1/auth/token"))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(again).await, (400, "key_required".into()));
    api.act_as(&admin_token);
    assert_eq!(api.get("/v1/keys").await.status(), 200);

    // Forgeries.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = |changes: Value| {
        let mut claims = json!({
            "iss": "warble", "aud": "warble-api", "sub": "01JDR7Q9V3X8M2K4T6N0P5B1CZ",
            "role": "admin", "tenant": "admin", "iat": now, "nbf": now, "exp": now + 600,
        });
        for (k, v) in changes.as_object().unwrap() {
            claims[k] = v.clone();
        }
        claims
    };
    let sign = |alg: Algorithm, claims: &Value, secret: &str| {
        encode(
            &Header::new(alg),
            claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    };
    let parts = |t: &str| t.split('.').map(str::to_string).collect::<Vec<_>>();
    let (user_parts, admin_parts) = (parts(&user_token), parts(&admin_token));
    let forged = [
        (
            "control: a correct token",
            sign(Algorithm::HS256, &claims(json!({})), SECRET),
            true,
        ),
        (
            "alg none",
            format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{}.", admin_parts[1]),
            false,
        ),
        (
            "tampered payload (user token, admin claims)",
            format!("{}.{}.{}", user_parts[0], admin_parts[1], user_parts[2]),
            false,
        ),
        (
            "expired",
            sign(Algorithm::HS256, &claims(json!({"exp": now - 120})), SECRET),
            false,
        ),
        (
            "not yet valid",
            sign(Algorithm::HS256, &claims(json!({"nbf": now + 600})), SECRET),
            false,
        ),
        (
            "issued in the future",
            sign(Algorithm::HS256, &claims(json!({"iat": now + 600})), SECRET),
            false,
        ),
        (
            "wrong aud",
            sign(Algorithm::HS256, &claims(json!({"aud": "other"})), SECRET),
            false,
        ),
        (
            "wrong iss",
            sign(Algorithm::HS256, &claims(json!({"iss": "other"})), SECRET),
            false,
        ),
        (
            "other secret",
            sign(
                Algorithm::HS256,
                &claims(json!({})),
                "another-secret-0123456789abcdef",
            ),
            false,
        ),
        (
            "HS512 with our secret",
            sign(Algorithm::HS512, &claims(json!({})), SECRET),
            false,
        ),
        (
            "RS256 header, HMAC signature (key confusion)",
            {
                let hs = parts(&sign(Algorithm::HS256, &claims(json!({})), SECRET));
                format!("eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.{}.{}", hs[1], hs[2])
            },
            false,
        ),
        (
            "no exp",
            {
                let mut c = claims(json!({}));
                c.as_object_mut().unwrap().remove("exp");
                sign(Algorithm::HS256, &c, SECRET)
            },
            false,
        ),
        ("100 KB", format!("eyJ{}.e30.x", "A".repeat(100_000)), false),
    ];
    for (name, token, accepted) in forged {
        api.act_as(&token);
        let response = api.get("/v1/keys").await;
        if accepted {
            assert_eq!(response.status(), 200, "{name}");
        } else {
            assert_eq!(
                error_of(response).await,
                (401, "unauthorized".into()),
                "{name}"
            );
            // (A small body, read in full before the refusal.)
            let form = reqwest::multipart::Form::new().part(
                "file",
                reqwest::multipart::Part::bytes(vec![0; 1024]).file_name("a.wav"),
            );
            assert_eq!(api.post_form(form, None).await.status(), 401, "{name}");
        }
    }
    api.act_as(ADMIN_KEY);
    assert_eq!(
        api.get_json("/v1/jobs").await["jobs"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
}

async fn admin_actions_are_audited(backends: Backends, _dir: &Path) {
    let mut api = Api::start(&backends);
    let (id, user) = make_key(&api, "auditor's subject", "user", Some("acme")).await;
    api.act_as(&user);
    let job = api.submit_ok(&fixture("audio/tts_us_m6.wav")).await;
    let canceled = api.post(&format!("/v1/jobs/{job}/cancel")).await;
    assert_eq!(canceled.status(), 200);
    // Users cannot read the log.
    assert_eq!(
        error_of(api.get("/v1/audit").await).await,
        (403, "forbidden".into())
    );
    api.act_as(ADMIN_KEY);
    assert_eq!(api.delete(&format!("/v1/keys/{id}")).await.status(), 200);

    let page = api.get_json("/v1/audit?limit=10").await;
    let entries: Vec<(String, String)> = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().into(),
                e["target"].as_str().unwrap().into(),
            )
        })
        .collect();
    let admin_key = entries.last().unwrap().1.clone();
    assert_eq!(
        entries,
        [
            ("key.revoke".to_string(), id.clone()),
            ("job.cancel".to_string(), job.clone()),
            ("key.create".to_string(), id.clone()),
            ("key.create".to_string(), admin_key.clone()),
        ]
    );
    let entries = page["entries"].as_array().unwrap();
    assert_eq!(entries[3]["actor"], "startup");
    assert_eq!(entries[1]["actor"], id.as_str());
    assert_eq!(entries[1]["detail"]["tenant"], "acme");
    assert_eq!(entries[2]["detail"]["role"], "user");
    assert!(
        !page.to_string().contains(&user),
        "a secret in the audit log"
    );
    // An admin cannot revoke the key it calls with, and nothing is recorded.
    let response = api.delete(&format!("/v1/keys/{admin_key}")).await;
    assert_eq!(error_of(response).await, (409, "own_key".into()));
    let after = api.get_json("/v1/audit?limit=10").await;
    assert_eq!(after["entries"].as_array().unwrap().len(), 4);
    assert_eq!(api.get("/v1/keys").await.status(), 200);
}
