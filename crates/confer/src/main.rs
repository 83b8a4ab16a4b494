//! `confer`: the server and its administration commands.

use std::{io::Read, process::ExitCode};

use clap::{Parser, Subcommand};
use confer_app::{
    config::{LogFormat, ServeArgs},
    users::{NewUser, UserRole},
};

#[derive(Debug, Parser)]
#[command(
    name = "confer",
    version,
    about = "Confer: who is in every conference, and taking them out of it safely"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (REST, CometD and gRPC)
    Serve(ServeArgs),
    /// Manage users (in the store that `serve` would use)
    Users {
        #[command(subcommand)]
        command: UsersCommand,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Debug, clap::Args)]
struct StoreArgs {
    /// Directory of the embedded store [default: ./confer-data]
    #[arg(long, env = "CONFER_DATA_DIR", global = true)]
    data_dir: Option<std::path::PathBuf>,
    /// PostgreSQL URL (postgres://...) instead of the embedded store
    #[arg(long, env = "CONFER_DATABASE_URL", global = true)]
    database_url: Option<String>,
    /// A TOML config file (its data_dir and database_url are used)
    #[arg(long, env = "CONFER_CONFIG", global = true)]
    config: Option<std::path::PathBuf>,
}

#[derive(Debug, Subcommand)]
enum UsersCommand {
    /// Add a user; the password is read from standard input (never a flag)
    Add {
        #[arg(long)]
        username: String,
        #[arg(long, value_enum)]
        role: UserRole,
        #[arg(long)]
        phone_number: Option<String>,
        /// The user id (default: the username)
        #[arg(long)]
        user_id: Option<String>,
        #[arg(long)]
        email: Option<String>,
        /// An Evo account the user belongs to (repeatable)
        #[arg(long)]
        account: Vec<String>,
        /// The id of the user's device (GWS `/api/v2/me/devices/{id}`)
        #[arg(long)]
        device_id: Option<String>,
    },
    /// List users
    List,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => {
                let config = args.resolve()?;
                confer_app::telemetry::init(config.log_format);
                confer::server::run(config).await
            }
            Command::Users { command, store } => {
                confer_app::telemetry::init(LogFormat::Text);
                let config = ServeArgs {
                    data_dir: store.data_dir,
                    database_url: store.database_url,
                    config: store.config,
                    ..Default::default()
                }
                .resolve()?;
                let store = confer_app::store::open(&config).await?;
                match command {
                    UsersCommand::Add {
                        username,
                        role,
                        phone_number,
                        user_id,
                        email,
                        account,
                        device_id,
                    } => {
                        let mut password = String::new();
                        std::io::stdin().read_to_string(&mut password)?;
                        let password = password.trim_end_matches(['\r', '\n']).to_owned();
                        let user = NewUser {
                            username,
                            role,
                            phone_number,
                            user_id,
                            email,
                            accounts: account,
                            device_id,
                            password,
                        };
                        let added = confer_app::users::add(store.as_ref(), user).await?;
                        println!("added user {} (id {})", added.username, added.id);
                        Ok(())
                    }
                    UsersCommand::List => {
                        for line in confer_app::users::list(store.as_ref()).await? {
                            println!("{line}");
                        }
                        Ok(())
                    }
                }
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
