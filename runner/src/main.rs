//! `alert-button`: the whole service on one port for local use, the directory validator, the
//! nearest-consulate lookup and the settings in effect.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use alert_button_core::backend::AwsBackend;
use alert_button_core::config::Config;
use alert_button_core::domain::consulate::{Directory, DirectoryProblem};
use alert_button_core::domain::directory_report::{self, Coverage};
use alert_button_core::domain::districts::{BUNDLED_DISTRICTS, BUNDLED_PLACES, Districts};
use alert_button_core::domain::geography::GeoPoint;
use alert_button_core::domain::templates::format_phone;
use alert_button_core::inbound::http;
use alert_button_core::inbound::stream_poller::StreamPoller;
use alert_button_core::local::{LocalMode, STAFF_KEY_FILE};
use alert_button_core::outbound::private_file;
use alert_button_core::outbound::staff_tokens::LocalStaffTokens;
use alert_button_core::telemetry;
use clap::{Parser, Subcommand};
use tokio::sync::watch;

mod web;

#[derive(Parser)]
#[command(
    name = "alert-button",
    version,
    about = "Alert Button: run it locally, check the consulate directory, find the nearest consulate"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the whole API on one port, with the embedded store and the local notifier.
    Serve {
        #[arg(long, default_value = "127.0.0.1:3000")]
        addr: SocketAddr,
        /// Where the store and notifications.jsonl live (with `--backend aws`, where the position
        /// reached in the table's stream is kept); kept across restarts.
        #[arg(long, default_value = ".alert-button")]
        data_dir: PathBuf,
        /// `embedded`, or `aws`: DynamoDB and SNS as configured by `ALERT_BUTTON_TABLE`,
        /// `ALERT_BUTTON_TOPIC_ARN` and the standard AWS settings (`AWS_ENDPOINT_URL` for an emulator).
        #[arg(long, env = "ALERT_BUTTON_BACKEND", default_value = "embedded")]
        backend: BackendKind,
    },
    /// Work with a consulate directory file.
    Directory {
        #[command(subcommand)]
        command: DirectoryCommand,
    },
    /// Mint a local staff token (a JWT) for a consulate, signed with the data directory's key.
    StaffToken {
        /// The consulate the staff member works at, e.g. mx-cg-chicago.
        #[arg(long)]
        consulate: String,
        /// The Embassy's national desk: sees every consulate's alerts.
        #[arg(long)]
        national: bool,
        /// Who the token is for, for the audit trail.
        #[arg(long, default_value = "local-staff")]
        subject: String,
        #[arg(long, default_value = ".alert-button")]
        data_dir: PathBuf,
        /// Validity in hours.
        #[arg(long, default_value_t = 12)]
        hours: u64,
    },
    /// Act out a text a contact sends to the service's number, as End User Messaging passes it
    /// on in AWS: STOP (or another opt-out keyword) stops texts to every contact with that
    /// number, START, YES or SI confirms; HELP and anything else change nothing. Works while
    /// `serve` runs on the same data directory.
    Reply {
        /// The contact's phone, in E.164 (e.g. +13125550100).
        #[arg(long)]
        from: String,
        /// What they texted, e.g. STOP.
        #[arg(long)]
        text: String,
        #[arg(long, default_value = ".alert-button")]
        data_dir: PathBuf,
    },
    /// Print the HTTP routes this build serves, one `METHOD /path` per line (`staff` after those
    /// only consulate staff may call).
    Routes,
    /// Print every environment variable the service reads, with the value in effect, its default
    /// and what it may be (secrets only as set or unset). Exits 2, naming the variable, when a
    /// value would stop `serve` and the functions from starting.
    Config,
    /// Redrive the fan-out's dead-letter queue: for each message (a stream batch Lambda gave up
    /// on), re-read the alerts it names from `ALERT_BUTTON_TABLE` and send what their recipients
    /// have not had yet, then delete it. A message that cannot be handled stays. Safe to repeat:
    /// the delivery ledger keeps anyone from being reached twice.
    Redrive {
        /// The dead-letter queue's URL (the stack's `DeadLetterQueueUrl` output).
        #[arg(long)]
        queue_url: String,
    },
    /// The nearest consulates to a point, from the bundled directory.
    Nearest {
        #[arg(long, allow_hyphen_values = true)]
        lat: f64,
        #[arg(long, allow_hyphen_values = true)]
        lon: f64,
        #[arg(long, default_value_t = 1)]
        limit: usize,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum BackendKind {
    Embedded,
    Aws,
}

#[derive(Subcommand)]
enum DirectoryCommand {
    /// Validate a directory CSV and its county lists; every problem is printed with its line
    /// number, then what the directory covers.
    Check {
        file: PathBuf,
        /// The county lists; by default `consular-districts.csv` beside FILE, else the bundled one.
        #[arg(long)]
        districts: Option<PathBuf>,
    },
    /// Print, per office, what is known, from where and what is missing (Markdown; the bundled
    /// directory unless FILE is given). `data/DIRECTORY.md` is this output.
    Report {
        file: Option<PathBuf>,
        /// The county lists; by default `consular-districts.csv` beside FILE, else the bundled one.
        #[arg(long)]
        districts: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Serve {
            addr,
            data_dir,
            backend,
        } => serve(addr, data_dir, backend),
        Command::Directory {
            command: DirectoryCommand::Check { file, districts },
        } => check_directory(&file, districts.as_deref()),
        Command::Directory {
            command: DirectoryCommand::Report { file, districts },
        } => report_directory(file.as_deref(), districts.as_deref()),
        Command::Nearest { lat, lon, limit } => nearest(lat, lon, limit),
        Command::Redrive { queue_url } => redrive(&queue_url),
        Command::Config => match Config::from_env() {
            Ok(config) => {
                print!("{}", config.table());
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("error: {err}");
                ExitCode::from(2)
            }
        },
        Command::StaffToken {
            consulate,
            national,
            subject,
            data_dir,
            hours,
        } => staff_token(&consulate, national, &subject, &data_dir, hours),
        Command::Reply {
            from,
            text,
            data_dir,
        } => reply(&from, &text, &data_dir),
        Command::Routes => {
            for route @ (method, path) in http::ROUTES {
                let staff = if http::STAFF_ROUTES.contains(route) {
                    " staff"
                } else {
                    ""
                };
                println!("{method} {path}{staff}");
            }
            ExitCode::SUCCESS
        }
    }
}

fn serve(addr: SocketAddr, data_dir: PathBuf, backend: BackendKind) -> ExitCode {
    telemetry::init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
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
    let local = LocalMode::open_keeping(&data_dir, directory, true, config.retention)?;
    let purged = local.purge_expired(local.service.now()).await?;
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
    let retention = local.service.retention();
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

    let app = local
        .router()
        .merge(web::pages())
        .into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    let _ = stop.send(true);
    relay.await?;
    escalation.await?;
    expiry.await?;
    receipts.await?;
    Ok(())
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
    let sweep = {
        let (service, mut stopped) = (aws.service.clone(), stopped.clone());
        tokio::spawn(async move {
            loop {
                if let Err(err) = service.sweep(service.now(), &policy).await {
                    tracing::warn!(error = %err, "the overdue sweep failed; will retry");
                }
                tokio::select! {
                    _ = tokio::time::sleep(ESCALATION_SWEEP) => {}
                    _ = stopped.changed() => return,
                }
            }
        })
    };
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
    let app = http::full_api(aws.service.clone(), directory)
        .merge(web::pages())
        .into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    let _ = stop.send(true);
    relay.await?;
    sweep.await?;
    Ok(())
}

fn redrive(queue_url: &str) -> ExitCode {
    telemetry::init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(2);
        }
    };
    let report = runtime.block_on(async {
        let redrive = alert_button_core::backend::redrive_from_config(&config).await?;
        Ok::<_, Box<dyn std::error::Error>>(redrive.run(queue_url).await?)
    });
    match report {
        Ok(report) => {
            println!(
                "redriven: {} message(s) deleted ({} from the time window), {} change(s) run, {} kept",
                report.deleted, report.from_window, report.changes, report.kept
            );
            if report.kept > 0 {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}

fn reply(from: &str, text: &str, data_dir: &Path) -> ExitCode {
    use alert_button_core::outbound::embedded::EmbeddedStore;
    use alert_button_core::replies::{classify, record_reply};

    let reply = classify(None, text);
    let recorded = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
        .and_then(|runtime| {
            let store = EmbeddedStore::open(&data_dir.join(alert_button_core::local::STORE_FILE))
                .map_err(|e| e.to_string())?;
            runtime
                .block_on(record_reply(&store, &store, from, reply))
                .map_err(|e| e.to_string())
        });
    match recorded {
        Ok(outcome) => {
            println!(
                "{reply:?}: {} registration(s) changed",
                outcome.people_changed
            );
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

fn staff_token(
    consulate: &str,
    national: bool,
    subject: &str,
    data_dir: &std::path::Path,
    hours: u64,
) -> ExitCode {
    if Directory::bundled().get(consulate).is_none() {
        eprintln!(
            "error: `{consulate}` is not a consulate id (see `alert-button nearest` or GET /v1/consulates)"
        );
        return ExitCode::from(2);
    }
    let issued = private_file::create_dir(data_dir)
        .map_err(|e| e.to_string())
        .and_then(|()| {
            LocalStaffTokens::open_or_create(&data_dir.join(STAFF_KEY_FILE))
                .map_err(|e| e.to_string())
        })
        .and_then(|tokens| {
            tokens
                .issue(
                    subject,
                    consulate,
                    national,
                    Duration::from_secs(hours * 3600),
                )
                .map_err(|e| e.to_string())
        });
    match issued {
        Ok(token) => {
            println!("{token}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

fn check_directory(file: &Path, districts_file: Option<&Path>) -> ExitCode {
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(err) => {
            eprintln!("{}: cannot read: {err}", file.display());
            return ExitCode::from(2);
        }
    };
    let directory = match Directory::from_csv(&text) {
        Ok(directory) => {
            println!(
                "{}: {} offices, no problems",
                file.display(),
                directory.all().len()
            );
            directory
        }
        Err(problems) => {
            print_problems(file, &problems);
            return ExitCode::FAILURE;
        }
    };
    let (districts_name, districts_text) = match read_districts(Some(file), districts_file) {
        Ok(found) => found,
        Err(code) => return code,
    };
    match Districts::from_csv(BUNDLED_PLACES, &districts_text, &directory) {
        Ok(districts) => {
            let offices = directory
                .all()
                .iter()
                .filter(|c| districts.counties_of(&c.id).next().is_some())
                .count();
            println!(
                "{districts_name}: {} counties assigned to {offices} offices, no problems",
                districts.assignments().len()
            );
            println!("coverage:");
            for line in Coverage::of(&directory, &districts).to_string().lines() {
                println!("  {line}");
            }
            ExitCode::SUCCESS
        }
        Err(problems) => {
            print_problems(Path::new(&districts_name), &problems);
            ExitCode::FAILURE
        }
    }
}

fn report_directory(file: Option<&Path>, districts_file: Option<&Path>) -> ExitCode {
    let directory = match file {
        None => Directory::bundled(),
        Some(file) => match std::fs::read_to_string(file).map(|text| Directory::from_csv(&text)) {
            Ok(Ok(directory)) => directory,
            Ok(Err(problems)) => {
                print_problems(file, &problems);
                return ExitCode::FAILURE;
            }
            Err(err) => {
                eprintln!("{}: cannot read: {err}", file.display());
                return ExitCode::from(2);
            }
        },
    };
    let (districts_name, districts_text) = match read_districts(file, districts_file) {
        Ok(found) => found,
        Err(code) => return code,
    };
    match Districts::from_csv(BUNDLED_PLACES, &districts_text, &directory) {
        Ok(districts) => {
            print!("{}", directory_report::markdown(&directory, &districts));
            ExitCode::SUCCESS
        }
        Err(problems) => {
            print_problems(Path::new(&districts_name), &problems);
            ExitCode::FAILURE
        }
    }
}

/// The county lists to check: the given file, else `consular-districts.csv` beside the directory
/// file, else the bundled lists. Returns a name for messages and the text.
fn read_districts(
    directory_file: Option<&Path>,
    districts_file: Option<&Path>,
) -> Result<(String, String), ExitCode> {
    let beside = directory_file
        .and_then(Path::parent)
        .map(|dir| dir.join("consular-districts.csv"))
        .filter(|path| path.is_file());
    match districts_file.map(Path::to_path_buf).or(beside) {
        Some(path) => match std::fs::read_to_string(&path) {
            Ok(text) => Ok((path.display().to_string(), text)),
            Err(err) => {
                eprintln!("{}: cannot read: {err}", path.display());
                Err(ExitCode::from(2))
            }
        },
        None => Ok((
            "bundled consular-districts.csv".to_owned(),
            BUNDLED_DISTRICTS.to_owned(),
        )),
    }
}

fn print_problems(file: &Path, problems: &[DirectoryProblem]) {
    for problem in problems {
        eprintln!("{}:{}: {}", file.display(), problem.line, problem.message);
    }
    eprintln!("{}: {} problem(s)", file.display(), problems.len());
}

fn nearest(lat: f64, lon: f64, limit: usize) -> ExitCode {
    if !lat.is_finite() || !(-90.0..=90.0).contains(&lat) {
        eprintln!("error: --lat must be a latitude between -90 and 90");
        return ExitCode::from(2);
    }
    if !lon.is_finite() || !(-180.0..=180.0).contains(&lon) {
        eprintln!("error: --lon must be a longitude between -180 and 180");
        return ExitCode::from(2);
    }
    if !(1..=10).contains(&limit) {
        eprintln!("error: --limit must be from 1 to 10");
        return ExitCode::from(2);
    }
    let directory = Directory::bundled();
    for (rank, nearby) in directory
        .nearest(GeoPoint { lat, lon }, limit)
        .iter()
        .enumerate()
    {
        let consulate = nearby.consulate;
        let (phone, _) = consulate.phone_to_call();
        println!(
            "{}. {} — {:.1} km\n   id: {}\n   {}\n   phone: {}",
            rank + 1,
            consulate.name,
            nearby.distance_km,
            consulate.id,
            consulate.address.clone().unwrap_or_else(|| format!(
                "{}, {} (street address unknown)",
                consulate.city, consulate.state
            )),
            format_phone(phone),
        );
    }
    ExitCode::SUCCESS
}
