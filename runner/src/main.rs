//! `alert-button`: the whole service on one port for local use, the directory validator, the
//! nearest-consulate lookup and the settings in effect.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use commands::serve::BackendKind;

mod commands;
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
        } => commands::serve::serve(addr, data_dir, backend),
        Command::Directory {
            command: DirectoryCommand::Check { file, districts },
        } => commands::directory::check(&file, districts.as_deref()),
        Command::Directory {
            command: DirectoryCommand::Report { file, districts },
        } => commands::directory::report(file.as_deref(), districts.as_deref()),
        Command::Nearest { lat, lon, limit } => commands::nearest::nearest(lat, lon, limit),
        Command::Redrive { queue_url } => commands::redrive::redrive(&queue_url),
        Command::Config => commands::config(),
        Command::StaffToken {
            consulate,
            national,
            subject,
            data_dir,
            hours,
        } => commands::staff_token::staff_token(&consulate, national, &subject, &data_dir, hours),
        Command::Reply {
            from,
            text,
            data_dir,
        } => commands::reply::reply(&from, &text, &data_dir),
        Command::Routes => commands::routes(),
    }
}
