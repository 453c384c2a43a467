//! Tenants of the management API, against `s3-connector run` and moto with IAM enforcement:
//! the confused deputy of #23 is refused (a tenant cannot connect another tenant's role and
//! bucket: its own ExternalId does not open the other's role), every connector route answers
//! another tenant's connector exactly as a missing one, an index belongs to one connector (the
//! one writing it, or one that left it with its documents kept) unless the operator re-targets
//! it, a deleted connector's history goes with it, and `/status` needs a token and shows a
//! tenant its own connectors. A tenant's connector with `embedding:` (the test suite's
//! OpenAI-compatible endpoint) answers passages, its API key goes to the endpoint and into no
//! answer or log line, a path on the worker is refused, and a model change through the API
//! fails the next sync and a semantic search naming both models, until a sync with
//! `reembed=true` rebuilds every vector.

use serde_json::{Value, json};

use crate::api::{ASSUME_ANY_ROLE, ApiWorker, body, connector_ids, message, role};
use crate::fixture::{create_bucket, put, s3_client};
use crate::support::iam::{self, ACCOUNT_ID};
use crate::support::{EmbedServer, MotoServer, unique_name};
use crate::worker::wait_for;

/// A tenant as `POST /api/v1/tenants` answered it: id, token, ExternalId.
struct TenantKeys {
    token: String,
    external_id: String,
}

fn create_tenant(worker: &ApiWorker, id: &str) -> TenantKeys {
    let (status, created) = worker.call("POST", "/api/v1/tenants", Some(&json!({ "id": id })));
    assert_eq!(status, 201, "{created}");
    TenantKeys {
        token: created["token"].as_str().unwrap().to_owned(),
        external_id: created["external_id"].as_str().unwrap().to_owned(),
    }
}

/// The first sync of `id`, seen by `token`, once it ended.
fn first_sync(worker: &ApiWorker, token: &str, id: &str) -> Value {
    wait_for(&format!("the first sync of {id}"), || {
        let (_, history) = worker.call_as(
            token,
            "GET",
            &format!("/api/v1/connectors/{id}/syncs"),
            None,
        );
        history["syncs"].as_array().and_then(|s| s.first().cloned())
    })
}

/// Two tenants, each with a role in its own account trusting the worker under its own
/// ExternalId, reading its own bucket; B's bucket holds a confidential document.
struct TwoTenants {
    _moto: MotoServer,
    /// The embedding endpoint `api.tenant_embedding_endpoints` admits.
    embed: EmbedServer,
    worker: ApiWorker,
    a: TenantKeys,
    b: TenantKeys,
    a_bucket: String,
    b_bucket: String,
    a_role: String,
    b_role: String,
}

async fn two_tenants() -> TwoTenants {
    let moto = MotoServer::start();
    let s3 = s3_client(&moto.endpoint());
    let (a_bucket, b_bucket) = (unique_name("tenant-a"), unique_name("tenant-b"));
    for name in [&a_bucket, &b_bucket] {
        create_bucket(&s3, name).await;
    }
    put(&s3, &a_bucket, "notes.txt", "the minutes of tenant a").await;
    put(
        &s3,
        &b_bucket,
        "hr/payroll.txt",
        "confidential payroll of tenant b",
    )
    .await;
    let user = iam::create_user(&moto, "platform-worker", ASSUME_ANY_ROLE);
    let principal = user.arn.clone();
    // The embedding endpoint the operator admits for tenants.
    let embed = EmbedServer::start(32);
    let mut worker = ApiWorker::with_api_lines(
        &moto.endpoint(),
        user,
        "",
        &format!("  tenant_embedding_endpoints: [\"{}\"]\n", embed.url()),
    );
    worker.start();
    let a = create_tenant(&worker, "a");
    let b = create_tenant(&worker, "b");
    assert_ne!(a.external_id, b.external_id);
    // Each customer's role, as aws-setup told each tenant.
    let a_role = role(&moto, "a-reader", &principal, &a.external_id, &a_bucket);
    let b_role = role(&moto, "b-reader", &principal, &b.external_id, &b_bucket);
    moto.enable_iam_enforcement();
    TwoTenants {
        _moto: moto,
        embed,
        worker,
        a,
        b,
        a_bucket,
        b_bucket,
        a_role,
        b_role,
    }
}

#[tokio::test]
async fn a_tenant_cannot_connect_another_tenants_role_and_bucket_confused_deputy() {
    let t = two_tenants().await;
    let worker = &t.worker;
    // Each tenant's aws-setup names its own ExternalId, never the deployment's or the other's.
    for (keys, other) in [(&t.a, &t.b), (&t.b, &t.a)] {
        let (status, setup) = worker.call_as(&keys.token, "GET", "/api/v1/aws-setup", None);
        assert_eq!(status, 200, "{setup}");
        assert_eq!(setup["external_id"], keys.external_id.as_str());
        let text = setup.to_string();
        assert!(text.contains(&keys.external_id), "{text}");
        assert!(!text.contains(&other.external_id), "{text}");
        assert!(!text.contains(crate::api::EXTERNAL_ID), "{text}");
    }

    // The attack: A posts B's role and bucket. The probe assumes B's role with A's ExternalId,
    // which B's trust policy refuses: 422 at the assume-role step, nothing stored.
    let mut attack = body(
        "steal",
        &format!("s3://{}", t.b_bucket),
        &t.b_role,
        ACCOUNT_ID,
    );
    attack["wait"] = json!(false);
    let (status, answer) = worker.call_as(&t.a.token, "POST", "/api/v1/connectors", Some(&attack));
    assert_eq!(status, 422, "{answer}");
    let steps = answer["error"]["steps"].as_array().unwrap();
    assert!(
        steps
            .iter()
            .any(|s| s["step"] == "credentials" && s["status"] == "fail"),
        "{answer}"
    );
    assert!(
        !worker.stored_file().exists(),
        "the attack stored something"
    );
    let (_, listed) = worker.call("GET", "/api/v1/connectors", None);
    assert_eq!(connector_ids(&listed), Vec::<&str>::new(), "{listed}");
    // An ExternalId in the body is refused as ever: the caller never chooses it.
    let mut chosen = attack.clone();
    chosen["external_id"] = json!(t.b.external_id);
    let (status, answer) = worker.call_as(&t.a.token, "POST", "/api/v1/connectors", Some(&chosen));
    assert_eq!(status, 400, "{answer}");

    // B's own connector on its own role: 201, synced with B's ExternalId.
    let own = body(
        "b-docs",
        &format!("s3://{}", t.b_bucket),
        &t.b_role,
        ACCOUNT_ID,
    );
    let (status, created) = worker.call_as(&t.b.token, "POST", "/api/v1/connectors", Some(&own));
    assert_eq!(status, 201, "{created}\n{}", worker.log());
    assert_eq!(created["tenant"], "b");
    let synced = first_sync(worker, &t.b.token, "b-docs");
    assert_eq!(synced["outcome"], "succeeded", "{synced}");
    let (_, found) = worker.call_as(
        &t.b.token,
        "GET",
        "/api/v1/connectors/b-docs/search?q=payroll",
        None,
    );
    assert_eq!(found["hits"][0]["key"], "hr/payroll.txt", "{found}");

    // A's own connector works too, and nothing A can search returns B's text.
    let mine = body(
        "a-docs",
        &format!("s3://{}", t.a_bucket),
        &t.a_role,
        ACCOUNT_ID,
    );
    let (status, created) = worker.call_as(&t.a.token, "POST", "/api/v1/connectors", Some(&mine));
    assert_eq!(status, 201, "{created}");
    assert_eq!(
        first_sync(worker, &t.a.token, "a-docs")["outcome"],
        "succeeded"
    );
    let (status, found) = worker.call_as(
        &t.a.token,
        "GET",
        "/api/v1/connectors/a-docs/search?q=payroll",
        None,
    );
    assert_eq!(
        (status, found["hits"].as_array().map(Vec::len)),
        (200, Some(0)),
        "{found}"
    );
    let (status, _) = worker.call_as(
        &t.a.token,
        "GET",
        "/api/v1/connectors/b-docs/search?q=payroll",
        None,
    );
    assert_eq!(status, 404);
    // A's connector pointed at B's index: 409, B's connector not named to A.
    let mut into_b = mine.clone();
    into_b["id"] = json!("a-into-b");
    into_b["index_name"] = json!("b-docs");
    let (status, answer) = worker.call_as(&t.a.token, "POST", "/api/v1/connectors", Some(&into_b));
    assert_eq!(status, 409, "{answer}");
    assert!(
        message(&answer).contains("a connector of another owner"),
        "{answer}"
    );
    let (status, answer) = worker.call("POST", "/api/v1/connectors", Some(&into_b));
    assert_eq!(status, 409, "{answer}");
    assert!(
        message(&answer).contains("connector b-docs (tenant b)"),
        "{answer}"
    );
    // A's connector moves to another index: the one it left keeps A's documents and stays
    // A's, so B cannot take it.
    let moved = json!({"index_name": "a-docs-moved"});
    let (status, answer) = worker.call_as(
        &t.a.token,
        "PATCH",
        "/api/v1/connectors/a-docs",
        Some(&moved),
    );
    assert_eq!(status, 200, "{answer}");
    let mut into_a = own.clone();
    into_a["id"] = json!("b-into-a");
    into_a["index_name"] = json!("a-docs");
    let (status, answer) = worker.call_as(&t.b.token, "POST", "/api/v1/connectors", Some(&into_a));
    assert_eq!(status, 409, "{answer}");
    assert!(
        message(&answer).contains("belongs to a connector of another owner, which left it"),
        "{answer}"
    );
    // The operator sees both, each with its tenant.
    let (_, listed) = worker.call("GET", "/api/v1/connectors", None);
    let tenants: Vec<(&str, &str)> = listed["connectors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["id"].as_str().unwrap(), c["tenant"].as_str().unwrap()))
        .collect();
    assert_eq!(tenants, [("b-docs", "b"), ("a-docs", "a")]);
}

#[tokio::test]
async fn tenants_see_only_their_own_connectors_and_indexes_stay_with_their_connector() {
    let t = two_tenants().await;
    let worker = &t.worker;
    let b_body = body(
        "b-docs",
        &format!("s3://{}", t.b_bucket),
        &t.b_role,
        ACCOUNT_ID,
    );
    let (status, created) = worker.call_as(&t.b.token, "POST", "/api/v1/connectors", Some(&b_body));
    assert_eq!(status, 201, "{created}");
    first_sync(worker, &t.b.token, "b-docs");

    // Every route of one connector, from the document: A gets 404 for B's connector, exactly
    // as for one that does not exist; B and the operator get through.
    let (_, document) = worker.call("GET", "/api/v1/openapi.json", None);
    let mut routes: Vec<(String, String)> = Vec::new();
    for (path, methods) in document["paths"].as_object().unwrap() {
        if path.starts_with("/api/v1/connectors/{id}") {
            for method in methods.as_object().unwrap().keys() {
                routes.push((method.to_uppercase(), path.clone()));
            }
        }
    }
    assert_eq!(routes.len(), 6, "{routes:?}");
    for (method, path) in &routes {
        let request = |id: &str| format!("{}?q=payroll", path.replace("{id}", id));
        let patch = json!({"interval": "2h"});
        let sent = (method == "PATCH").then_some(&patch);
        let (status, answer) = worker.call_as(&t.a.token, method, &request("b-docs"), sent);
        let (missing_status, missing) =
            worker.call_as(&t.a.token, method, &request("no-such-id"), sent);
        assert_eq!(
            (status, missing_status),
            (404, 404),
            "{method} {path}: {answer}"
        );
        assert_eq!(
            message(&answer).replace("b-docs", "no-such-id"),
            message(&missing),
            "{method} {path}"
        );
        if method != "DELETE" && method != "POST" {
            let (status, answer) = worker.call_as(&t.b.token, method, &request("b-docs"), sent);
            assert_eq!(status, 200, "{method} {path}: {answer}");
            let (status, answer) = worker.call(method, &request("b-docs"), sent);
            assert_eq!(status, 200, "{method} {path}: {answer}");
        }
    }
    let (_, listed) = worker.call_as(&t.a.token, "GET", "/api/v1/connectors", None);
    assert_eq!(connector_ids(&listed), Vec::<&str>::new(), "{listed}");
    // Tenants are the operator's: 403 for a tenant's token.
    let (status, _) = worker.call_as(&t.a.token, "GET", "/api/v1/tenants", None);
    assert_eq!(status, 403);

    // /status: 401 without a token; a tenant sees its own connectors; the operator all.
    let anonymous = worker.try_call("GET", "/status", None, &[]).unwrap();
    assert_eq!(anonymous.status, 401);
    assert!(!anonymous.text().contains(&t.b_bucket));
    let (_, of_a) = worker.call_as(&t.a.token, "GET", "/status", None);
    assert_eq!(of_a["connectors"], json!([]), "{of_a}");
    let (_, of_b) = worker.call_as(&t.b.token, "GET", "/status", None);
    assert_eq!(of_b["connectors"][0]["id"], "b-docs", "{of_b}");
    let ready = worker.try_call("GET", "/readyz", None, &[]).unwrap();
    assert_eq!(ready.status, 200, "{}", ready.text());

    // B deletes its connector and keeps the documents: the index stays b-docs'. Its history
    // is deleted with it.
    let (status, _) = worker.call_as(&t.b.token, "DELETE", "/api/v1/connectors/b-docs", None);
    assert_eq!(status, 200);
    let (status, _) = worker.call("GET", "/api/v1/connectors/b-docs/syncs", None);
    assert_eq!(status, 404);
    // A's connector on that index, by A or by the operator without retarget: 409 naming the
    // owner to the operator only.
    let mut taker = body(
        "a-docs",
        &format!("s3://{}", t.a_bucket),
        &t.a_role,
        ACCOUNT_ID,
    );
    taker["index_name"] = json!("b-docs");
    let (status, answer) = worker.call_as(&t.a.token, "POST", "/api/v1/connectors", Some(&taker));
    assert_eq!(status, 409, "{answer}");
    assert!(
        message(&answer).contains("belongs to a connector of another owner"),
        "{answer}"
    );
    let mut retarget = taker.clone();
    retarget["retarget"] = json!(true);
    let (status, answer) =
        worker.call_as(&t.a.token, "POST", "/api/v1/connectors", Some(&retarget));
    assert_eq!(status, 403, "{answer}");
    assert!(
        message(&answer).contains("needs the operator's token"),
        "{answer}"
    );
    let (status, answer) = worker.call("POST", "/api/v1/connectors", Some(&taker));
    assert_eq!(status, 409, "{answer}");
    assert!(
        message(&answer).contains(
            "belongs to connector b-docs (tenant b), which left it with its documents kept"
        ),
        "{answer}"
    );

    // B creates its connector again: the index is its own again, and the history starts empty
    // (only the new connector's first sync).
    let (status, created) = worker.call_as(&t.b.token, "POST", "/api/v1/connectors", Some(&b_body));
    assert_eq!(status, 201, "{created}");
    first_sync(worker, &t.b.token, "b-docs");
    let (_, history) = worker.call_as(&t.b.token, "GET", "/api/v1/connectors/b-docs/syncs", None);
    assert_eq!(history["syncs"].as_array().unwrap().len(), 1, "{history}");
    let (status, _) = worker.call_as(&t.b.token, "DELETE", "/api/v1/connectors/b-docs", None);
    assert_eq!(status, 200);

    // A's own connector; the operator gives it the index b-docs left, explicitly.
    taker.as_object_mut().unwrap().remove("index_name");
    let (status, created) = worker.call_as(&t.a.token, "POST", "/api/v1/connectors", Some(&taker));
    assert_eq!(status, 201, "{created}");
    first_sync(worker, &t.a.token, "a-docs");
    let to_b = json!({"index_name": "b-docs", "retarget": true});
    let (status, answer) = worker.call_as(
        &t.a.token,
        "PATCH",
        "/api/v1/connectors/a-docs",
        Some(&to_b),
    );
    assert_eq!(status, 403, "{answer}");
    let (status, patched) = worker.call("PATCH", "/api/v1/connectors/a-docs", Some(&to_b));
    assert_eq!(status, 200, "{patched}\n{}", worker.log());
    assert_eq!(patched["retarget_pending"], true, "{patched}");
    // Until a sync re-targets it, the index holds B's documents: A's search is refused.
    let (status, answer) = worker.call_as(
        &t.a.token,
        "GET",
        "/api/v1/connectors/a-docs/search?q=payroll",
        None,
    );
    assert_eq!(status, 409, "{answer}");
    assert!(!answer.to_string().contains(&t.b_bucket), "{answer}");
    // The sync re-targets it: B's documents go, A's come.
    let (status, _) = worker.call_as(&t.a.token, "POST", "/api/v1/connectors/a-docs/sync", None);
    assert_eq!(status, 202);
    wait_for("the re-targeting sync of a-docs", || {
        let (_, history) =
            worker.call_as(&t.a.token, "GET", "/api/v1/connectors/a-docs/syncs", None);
        let syncs = history["syncs"].as_array()?;
        (syncs.len() == 2).then_some(())
    });
    let search = |q: &str| {
        let (status, found) = worker.call_as(
            &t.a.token,
            "GET",
            &format!("/api/v1/connectors/a-docs/search?q={q}"),
            None,
        );
        assert_eq!(status, 200, "{found}");
        found["hits"].as_array().unwrap().len()
    };
    assert_eq!((search("payroll"), search("minutes")), (0, 1));

    // Deleting tenant A deletes its connectors and stops its token.
    let (status, deleted) = worker.call("DELETE", "/api/v1/tenants/a?delete_index=true", None);
    assert_eq!(status, 200, "{deleted}");
    assert_eq!(
        deleted["connectors_deleted"],
        json!(["a-docs"]),
        "{deleted}"
    );
    assert_eq!(deleted["documents_deleted"], 1, "{deleted}");
    let (status, _) = worker.call_as(&t.a.token, "GET", "/api/v1/connectors", None);
    assert_eq!(status, 401);
    let (_, listed) = worker.call("GET", "/api/v1/connectors", None);
    assert_eq!(connector_ids(&listed), Vec::<&str>::new(), "{listed}");
}

#[tokio::test]
async fn a_tenants_connector_with_embedding_searches_passages_and_never_shows_its_key() {
    let t = two_tenants().await;
    let worker = &t.worker;
    let as_a = |method: &str, path: &str, body: Option<&Value>| {
        worker.call_as(&t.a.token, method, path, body)
    };
    let embed = &t.embed;
    const KEY: &str = "sk-tenant-a-0123456789secret";
    let mut with_embedding = body(
        "a-meaning",
        &format!("s3://{}", t.a_bucket),
        &t.a_role,
        ACCOUNT_ID,
    );
    // A path on the worker from a tenant: 400 naming the field, nothing stored.
    with_embedding["embedding"] = json!({"provider": "local", "model_dir": "/etc"});
    let (status, answer) = as_a("POST", "/api/v1/connectors", Some(&with_embedding));
    assert_eq!(status, 400, "{answer}");
    assert_eq!(
        answer["error"]["problems"][0]["field"], "embedding.model_dir",
        "{answer}"
    );
    assert!(!answer.to_string().contains("/etc"), "{answer}");
    // An endpoint the operator did not admit (here, the worker's own API): 400 naming the
    // field and the admitted endpoints, nothing stored, nothing sent.
    with_embedding["embedding"] = json!({
        "provider": "openai", "endpoint_url": format!("{}/v1", worker.base_url()), "model": "m",
        "dimensions": 32, "api_key": KEY
    });
    let (status, answer) = as_a("POST", "/api/v1/connectors", Some(&with_embedding));
    assert_eq!(status, 400, "{answer}");
    assert_eq!(
        answer["error"]["problems"][0]["field"], "embedding.endpoint_url",
        "{answer}"
    );
    let rule = answer["error"]["problems"][0]["rule"]
        .as_str()
        .unwrap_or_default();
    assert!(rule.contains(embed.url()), "{answer}");
    assert!(!answer.to_string().contains(KEY), "{answer}");
    with_embedding["embedding"] = json!({
        "provider": "openai", "endpoint_url": embed.url(), "model": "word-hash",
        "dimensions": 32, "api_key": KEY, "max_tokens": 64, "overlap_tokens": 8
    });
    let (status, created) = as_a("POST", "/api/v1/connectors", Some(&with_embedding));
    assert_eq!(status, 201, "{created}\n{}", worker.log());
    assert_eq!(created["embedding"]["provider"], "openai", "{created}");
    assert_eq!(created["embedding"]["api_key_set"], true, "{created}");
    assert_eq!(created["embedding"]["max_tokens"], 64, "{created}");
    let synced = first_sync(worker, &t.a.token, "a-meaning");
    assert_eq!(synced["outcome"], "succeeded", "{synced}\n{}", worker.log());
    // The key went to the endpoint, and only there.
    let requests = embed.requests();
    assert!(!requests.is_empty());
    assert!(
        requests
            .iter()
            .all(|r| r.authorization.as_deref() == Some(&format!("Bearer {KEY}"))),
        "{requests:?}"
    );
    let (status, found) = as_a(
        "GET",
        "/api/v1/connectors/a-meaning/search?q=minutes&mode=semantic",
        None,
    );
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["mode"], "semantic", "{found}");
    assert_eq!(
        found["hits"][0]["passage"]["text"], "the minutes of tenant a",
        "{found}"
    );

    // A model change through the API: stored, its answer names both models, the next sync is
    // refused naming both, a semantic search too; a sync with reembed=true rebuilds the vectors,
    // and searches work again.
    let (status, changed) = as_a(
        "PATCH",
        "/api/v1/connectors/a-meaning",
        Some(&json!({"embedding": {"model": "another-hash"}})),
    );
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["embedding"]["model"], "another-hash", "{changed}");
    assert_eq!(changed["embedding"]["api_key_set"], true, "{changed}");
    names_both_models(changed["model_change"].as_str().unwrap_or_default());
    let (status, started) = as_a("POST", "/api/v1/connectors/a-meaning/sync", None);
    assert_eq!(status, 202, "{started}");
    let refused = wait_for("the sync after the model change", || {
        let (_, history) = as_a("GET", "/api/v1/connectors/a-meaning/syncs", None);
        let syncs = history["syncs"].as_array()?.clone();
        (syncs.len() == 2).then(|| syncs[0].clone())
    });
    assert_eq!(refused["outcome"], "failed", "{refused}");
    names_both_models(&refused["error_messages"].to_string());
    let (status, answer) = as_a(
        "GET",
        "/api/v1/connectors/a-meaning/search?q=minutes&mode=semantic",
        None,
    );
    assert_eq!(status, 400, "{answer}");
    names_both_models(&message(&answer));
    // The way out through the API: a sync that rebuilds every vector with the new model.
    embed.clear();
    let (status, started) = as_a(
        "POST",
        "/api/v1/connectors/a-meaning/sync?reembed=true",
        None,
    );
    assert_eq!(
        (status, &started["reembed"]),
        (202, &json!(true)),
        "{started}"
    );
    let rebuilt = wait_for("the sync that rebuilds every vector", || {
        let (_, history) = as_a("GET", "/api/v1/connectors/a-meaning/syncs", None);
        let syncs = history["syncs"].as_array()?.clone();
        (syncs.len() == 3).then(|| syncs[0].clone())
    });
    assert_eq!(rebuilt["outcome"], "succeeded", "{rebuilt}");
    let requests = embed.requests();
    assert!(
        !requests.is_empty() && requests.iter().all(|r| r.model == "another-hash"),
        "{requests:?}"
    );
    let (status, found) = as_a(
        "GET",
        "/api/v1/connectors/a-meaning/search?q=minutes&mode=hybrid",
        None,
    );
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["hits"][0]["key"], "notes.txt", "{found}");

    // The key is in no answer, no log line; the store keeps it to call the endpoint after a
    // restart.
    let (_, listed) = worker.call("GET", "/api/v1/connectors", None);
    let (_, one) = as_a("GET", "/api/v1/connectors/a-meaning", None);
    let (_, status_page) = worker.call("GET", "/status", None);
    for shown in [
        listed.to_string(),
        one.to_string(),
        status_page.to_string(),
        created.to_string(),
        changed.to_string(),
        worker.log(),
    ] {
        assert!(!shown.contains(KEY), "{shown}");
    }
    assert!(
        std::fs::read_to_string(worker.stored_file())
            .unwrap()
            .contains(KEY)
    );
    // embedding: null goes back to the defaults (none here): keyword search over documents.
    let (status, plain) = as_a(
        "PATCH",
        "/api/v1/connectors/a-meaning",
        Some(&json!({"embedding": null})),
    );
    assert_eq!(status, 200, "{plain}");
    assert_eq!(plain["embedding"], Value::Null, "{plain}");
}

/// Asserts that `text` names the model the index holds and the one the connector changed to.
fn names_both_models(text: &str) {
    for model in [
        "openai:word-hash (32 dimensions)",
        "openai:another-hash (32 dimensions)",
    ] {
        assert!(text.contains(model), "{model} is not named: {text}");
    }
}
