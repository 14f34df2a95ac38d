//! `alert-button serve`: the whole API on one port, on the embedded store or on AWS.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use alert_button_core::backend::AwsBackend;
use alert_button_core::config::Config;
use alert_button_core::domain::consulate::Directory;
use alert_button_core::inbound::http;
use alert_button_core::inbound::stream_poller::StreamPoller;
use alert_button_core::local::{LocalMode, spawn_sweep};
use alert_button_core::outbound::private_file;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::web;

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum BackendKind {
    Embedded,
    Aws,
}

pub fn serve(addr: SocketAddr, data_dir: PathBuf, backend: BackendKind) -> ExitCode {
    let runtime = match super::runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    let served = match Config::from_env() {
        Err(err) => Err(err.into()),
        Ok(config) => match backend {
            BackendKind::Embedded => runtime.block_on(run_server(addr, data_dir, config)),
            BackendKind::Aws => runtime.block_on(run_aws_server(addr, data_dir, config)),
        },
    };
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn run_server(
    addr: SocketAddr,
    data_dir: PathBuf,
    config: Config,
) -> Result<(), Box<dyn std::error::Error>> {
    let directory = Arc::new(Directory::bundled());
    let local = LocalMode::configured(&data_dir, directory, true, &config)?;
    let purged = local.purge_expired(local.services.scheduler.now()).await?;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;

    let (stop, stopped) = watch::channel(false);
    let relay = local.spawn_relay(stopped.clone());
    let policy = config.escalation;
    let escalation = local.spawn_escalation(policy, ESCALATION_SWEEP, stopped.clone());
    // Texts are reported delivered (or failed, see the journal) a few seconds after they leave.
    let receipts = local.spawn_receipts(
        time::Duration::seconds(3),
        std::time::Duration::from_secs(1),
        stopped.clone(),
    );
    let expiry = local.spawn_expiry(EXPIRY_SWEEP, stopped);

    println!("Alert Button listening on http://{bound}");
    println!("  data:          {}", local.data_dir.display());
    println!("  notifications: {}", local.notifier.path().display());
    println!("  consulates:    {} offices", local.directory.all().len());
    println!(
        "  escalation:    unacknowledged alerts escalate every {} min",
        policy.after.whole_minutes()
    );
    let retention = local.retention();
    println!(
        "  retention:     closed alerts {} d, open alerts {} d, registrations {} d",
        retention.closed_alert.whole_days(),
        retention.active_alert.whole_days(),
        retention.person.whole_days()
    );
    if purged > 0 {
        println!("  expired:       {purged} records removed");
    }
    println!("  pages:         http://{bound}/ (the button), http://{bound}/console (staff)");
    println!("Try: curl http://{bound}/v1/consulates/nearest?lat=34.05&lon=-118.24");
    println!(
        "Staff: alert-button staff-token --consulate mx-cg-chicago --data-dir {} prints a bearer token",
        local.data_dir.display()
    );

    serve_until_stopped(
        listener,
        local.router(),
        stop,
        [relay, escalation, expiry, receipts],
    )
    .await
}

/// How often the local runner looks for alerts to escalate.
const ESCALATION_SWEEP: Duration = Duration::from_secs(30);
/// How often the local runner erases what outlived its retention (DynamoDB's TTL is as coarse).
const EXPIRY_SWEEP: Duration = Duration::from_secs(3600);

/// Where `serve --backend aws` keeps, per stream shard, the last record it delivered.
const STREAM_POSITION_FILE: &str = "stream-position.json";

/// The API against DynamoDB and SNS, with a stream poller standing in for the Lambda trigger and
/// a sweep standing in for the scheduled escalation function.
async fn run_aws_server(
    addr: SocketAddr,
    data_dir: PathBuf,
    config: Config,
) -> Result<(), Box<dyn std::error::Error>> {
    let settings = config
        .aws()?
        .ok_or("ALERT_BUTTON_TABLE must be set for --backend aws")?;
    let directory = Arc::new(Directory::bundled());
    let aws = AwsBackend::new(settings, directory.clone()).await?;
    private_file::create_dir(&data_dir)?;
    let position_file = data_dir.join(STREAM_POSITION_FILE);
    let mut poller = StreamPoller::connect(&aws.sdk_config, &aws.settings.table)
        .await?
        .remembering(&position_file)?;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;

    let (stop, mut stopped) = watch::channel(false);
    let policy = config.escalation;
    let sweep = spawn_sweep(
        aws.services.scheduler.clone(),
        policy,
        ESCALATION_SWEEP,
        stopped.clone(),
    );
    let fanout = aws.fanout.clone();
    let relay = tokio::spawn(async move {
        loop {
            let pause = match poller.deliver_once(&fanout).await {
                Ok((seen, 0)) if seen > 0 => Duration::ZERO,
                Ok(_) => Duration::from_millis(500),
                Err(err) => {
                    tracing::warn!(error = %err, "reading the table's stream failed; will retry");
                    Duration::from_secs(2)
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = stopped.changed() => return,
            }
        }
    });

    println!("Alert Button listening on http://{bound}");
    println!("  table:         {}", aws.settings.table);
    println!("  topic:         {}", aws.settings.topic_arn);
    println!(
        "  stream:        position kept in {}",
        position_file.display()
    );
    println!(
        "  escalation:    unacknowledged alerts escalate every {} min",
        policy.after.whole_minutes()
    );
    println!("  pages:         http://{bound}/ (the button), http://{bound}/console (staff)");
    let api = http::full_api(&aws.services, directory);
    serve_until_stopped(listener, api, stop, [relay, sweep]).await
}

/// Serves `api` and the pages until a shutdown signal, then stops the background `tasks` and
/// waits for them to finish what they hold.
async fn serve_until_stopped<const N: usize>(
    listener: tokio::net::TcpListener,
    api: axum::Router,
    stop: watch::Sender<bool>,
    tasks: [JoinHandle<()>; N],
) -> Result<(), Box<dyn std::error::Error>> {
    let app = api
        .merge(web::pages())
        .into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(super::shutdown_signal())
        .await?;
    let _ = stop.send(true);
    for task in tasks {
        task.await?;
    }
    Ok(())
}
