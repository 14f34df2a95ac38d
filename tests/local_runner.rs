//! The `alert-button` binary as a newcomer runs it: `serve` over real TCP, killed and restarted,
//! `directory check` on the bundled and on broken files, and `nearest`.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use alert_button_core::local::JOURNAL_FILE;
use alert_button_tests::{
    Runner, alert_button, binary, of_change, read_journal, stdout_of, wait_for_journal,
};
use serde_json::{Value, json};

fn data_file() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/consulates.csv")
}

#[test]
fn the_bundled_directory_passes_the_check() {
    let stdout = stdout_of(alert_button(&["directory", "check"]).arg(data_file()));
    assert!(stdout.contains("53 offices, no problems"));
}

#[test]
fn a_broken_directory_fails_with_line_numbers() {
    let original = std::fs::read_to_string(data_file()).unwrap();
    let mut lines: Vec<String> = original.lines().map(str::to_owned).collect();
    // Line 3: an impossible latitude; line 5: a phone in the wrong form; line 6: a copy of line 2's id.
    lines[2] = lines[2].replacen(",35.0844,", ",135.0844,", 1);
    lines[4] = lines[4].replacen(",,30.2672,", ",512-555-0100,30.2672,", 1);
    let second_id = lines[1].split(',').next().unwrap().to_owned();
    let sixth_id = lines[5].split(',').next().unwrap().to_owned();
    lines[5] = lines[5].replacen(&sixth_id, &second_id, 1);
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("consulates.csv");
    std::fs::write(&broken, lines.join("\n")).unwrap();

    let output = Command::new(binary("alert-button"))
        .args(["directory", "check"])
        .arg(&broken)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("consulates.csv:3: latitude"), "{stderr}");
    assert!(stderr.contains("consulates.csv:5: phone"), "{stderr}");
    assert!(
        stderr.contains("consulates.csv:6: duplicate id `mx-emb-washington` (first on line 2)"),
        "{stderr}"
    );

    let missing = Command::new(binary("alert-button"))
        .args(["directory", "check", "/nonexistent/consulates.csv"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
}

#[test]
fn serve_refuses_a_retention_it_cannot_honour() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(binary("alert-button"))
        .args(["serve", "--addr", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .env("ALERT_BUTTON_CLOSED_ALERT_DAYS", "0")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("ALERT_BUTTON_CLOSED_ALERT_DAYS: `0` is not a whole number of days"),
        "{stderr}"
    );
}

#[test]
fn config_prints_every_variable_with_the_value_in_effect_and_no_secret() {
    let stdout = stdout_of(
        alert_button(&["config"])
            .env_clear()
            .env("ALERT_BUTTON_CLOSED_ALERT_DAYS", " 7 ")
            .env("ALERT_BUTTON_FAMILY_SMS", "direct")
            .env("AWS_SECRET_ACCESS_KEY", "not-to-be-printed"),
    );
    for line in [
        "ALERT_BUTTON_CLOSED_ALERT_DAYS = 7\n",
        "ALERT_BUTTON_ACTIVE_ALERT_DAYS = 90\n",
        "ALERT_BUTTON_ESCALATE_AFTER_MINUTES = 10\n",
        "ALERT_BUTTON_FAMILY_SMS = direct\n",
        "ALERT_BUTTON_TABLE = (unset)\n",
        "AWS_SECRET_ACCESS_KEY = (set)\n",
        "    default: 30\n",
    ] {
        assert!(stdout.contains(line), "{line:?} in\n{stdout}");
    }
    assert!(!stdout.contains("not-to-be-printed"), "{stdout}");
    for variable in alert_button_core::config::VARIABLES {
        assert!(
            stdout.contains(&format!("{} = ", variable.name)),
            "{} in\n{stdout}",
            variable.name
        );
    }

    let bad = Command::new(binary("alert-button"))
        .arg("config")
        .env_clear()
        .env("ALERT_BUTTON_ESCALATE_AFTER_MINUTES", "0")
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.contains(
            "ALERT_BUTTON_ESCALATE_AFTER_MINUTES: `0` is not a whole number of minutes from 1 to 10080"
        ),
        "{stderr}"
    );
}

#[test]
fn nearest_prints_the_offices_in_order() {
    let nearest = [
        "nearest", "--lat", "29.42", "--lon", "-98.49", "--limit", "2",
    ];
    let stdout = stdout_of(&mut alert_button(&nearest));
    let first = stdout.find("San Antonio").expect("San Antonio listed");
    let second = stdout.find("2. ").expect("a second office");
    assert!(first < second, "{stdout}");
    assert!(
        stdout.contains("+1 520 623 7874"),
        "unknown office phone falls back to CIAM: {stdout}"
    );

    let bad = Command::new(binary("alert-button"))
        .args(["nearest", "--lat", "95", "--lon", "0"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_survives_a_kill_and_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let runner = Runner::start(dir.path());

    let health: Value = runner
        .client
        .get(runner.url("/healthz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health, json!({"status": "ok"}));

    let token = runner
        .register_with(json!({"display_name": "Ana", "language": "es", "contacts": [{"name": "Luis", "phone": "+13125550100"}]}))
        .await;
    let atlanta = (33.75, -84.39);
    let (status, alert) = runner.press(&token, "k-1", atlanta).await;
    assert_eq!(status, 201);
    let alert_id = alert["alert_id"].as_str().unwrap().to_owned();
    assert_eq!(alert["consulate"]["id"], "mx-cg-atlanta");

    let journal = dir.path().join(JOURNAL_FILE);
    wait_for_journal(&journal, |lines| of_change(lines, &alert_id, 1).len() >= 2).await;
    // The console is a log: one line per notification with its ids, event, audience and
    // recipient count, never its text (a map link with the coordinates) or an address. A line is
    // printed once its journal line is durable, so it may come just after.
    let started = std::time::Instant::now();
    let printed = loop {
        let printed = runner.stdout.lock().unwrap().join("\n");
        let both = ["family", "consulate"].iter().all(|audience| {
            printed.lines().any(|line| {
                line.contains(&alert_id) && line.contains(&format!("audience={audience}"))
            })
        });
        if both || started.elapsed() > alert_button_tests::PATIENCE {
            break printed;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    for audience in ["family", "consulate"] {
        let line = printed
            .lines()
            .find(|line| line.contains(&alert_id) && line.contains(&format!("audience={audience}")))
            .unwrap_or_else(|| panic!("no {audience} notification line: {printed}"));
        assert!(
            line.contains("event=opened") && line.contains("recipients=1"),
            "{line}"
        );
    }
    for private in ["ALERTA", "Ana", "33.75", "84.39", "maps.google", "5550100"] {
        assert!(!printed.contains(private), "`{private}` printed: {printed}");
    }

    // SIGKILL: no graceful shutdown at all.
    runner.kill();
    let runner = Runner::start(dir.path());

    let (status, restored) = runner.get(&format!("/v1/alerts/{alert_id}"), &token).await;
    assert_eq!(status, 200);
    assert_eq!(restored["status"], "open");

    // The replay after the restart is still the same alert, and notifies nobody again.
    let (status, replay) = runner.press(&token, "k-1", atlanta).await;
    assert_eq!(status, 200);
    assert_eq!(replay["alert_id"], alert_id.as_str());

    let cancel = format!("/v1/alerts/{alert_id}/cancel");
    let (status, _) = runner
        .post(&cancel, Some(&token), json!({"reason": "mistake"}))
        .await;
    assert_eq!(status, 200);
    let lines = wait_for_journal(&journal, |lines| of_change(lines, &alert_id, 2).len() >= 2).await;
    assert_eq!(of_change(&lines, &alert_id, 1).len(), 2);

    // A clean stop on SIGTERM.
    let status = runner.terminate();
    assert!(status.success(), "{status}");
    assert_eq!(read_journal(&journal).len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_answers_the_person_page_and_the_console() {
    let dir = tempfile::tempdir().unwrap();
    let runner = Runner::start(dir.path());
    let client = &runner.client;
    for (path, kind, marker) in [
        ("/", "text/html", "id=\"press\""),
        ("/console", "text/html", "id=\"token-form\""),
        ("/app.js", "text/javascript", "client_alert_id"),
        ("/console.js", "text/javascript", "/acknowledge"),
        ("/sw.js", "text/javascript", "caches"),
        (
            "/manifest.webmanifest",
            "application/manifest+json",
            "start_url",
        ),
        ("/us-outline.svg", "image/svg+xml", "<path"),
    ] {
        let response = client.get(runner.url(path)).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 200, "{path}");
        let headers = response.headers().clone();
        assert!(
            headers["content-type"].to_str().unwrap().starts_with(kind),
            "{path}: {:?}",
            headers["content-type"]
        );
        // Scripts only from the runner itself: nothing inline, nothing from elsewhere.
        let policy = headers["content-security-policy"].to_str().unwrap();
        assert!(policy.contains("script-src 'self'"), "{path}: {policy}");
        assert!(
            policy.contains("frame-ancestors 'none'"),
            "{path}: {policy}"
        );
        assert!(response.text().await.unwrap().contains(marker), "{path}");
    }
    // The pages are not API routes: an unknown path is still the API's JSON 404.
    let missing = client.get(runner.url("/nope.js")).send().await.unwrap();
    assert_eq!(missing.status().as_u16(), 404);
    let body: Value = missing.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");
}
