//! `confer`: the server and its administration commands.

use std::{io::Read, process::ExitCode};

use clap::{Parser, Subcommand};
use confer_app::{
    auth::keys::KeySource,
    config::{LogFormat, ServeArgs},
    users::{self, NewUser, UserRole},
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

// Parsed once at start: the size of the largest variant (every `serve` setting) costs nothing.
#[allow(clippy::large_enum_variant)]
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
    /// Manage the session signing keys
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
        #[command(flatten)]
        store: StoreArgs,
        /// The key file [default: <data-dir>/session-keys]
        #[arg(long, env = "CONFER_SESSION_KEY_FILE", global = true)]
        session_key_file: Option<std::path::PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Put a new signing key first and keep the previous one, so that sessions signed before
    /// stay valid until they expire; running servers pick the new key up within seconds
    Rotate,
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
    /// Set a user's password (read from standard input); ends every session of the user
    Passwd {
        #[arg(long)]
        username: String,
    },
    /// Disable a user: it cannot sign in, and every session of the user ends
    Disable {
        #[arg(long)]
        username: String,
    },
    /// Enable a disabled user again (its old sessions stay ended)
    Enable {
        #[arg(long)]
        username: String,
    },
    /// Remove a user; every session of the user ends
    Remove {
        #[arg(long)]
        username: String,
    },
}

/// A password from standard input, without its line ending.
fn read_password() -> std::io::Result<String> {
    let mut password = String::new();
    std::io::stdin().read_to_string(&mut password)?;
    Ok(password.trim_end_matches(['\r', '\n']).to_owned())
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
                        let password = read_password()?;
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
                    UsersCommand::Passwd { username } => {
                        let password = read_password()?;
                        users::set_password(store.as_ref(), &username, password).await?;
                        println!("changed the password of {username}; its sessions have ended");
                        Ok(())
                    }
                    UsersCommand::Disable { username } => {
                        users::set_disabled(store.as_ref(), &username, true).await?;
                        println!("disabled {username}; its sessions have ended");
                        Ok(())
                    }
                    UsersCommand::Enable { username } => {
                        users::set_disabled(store.as_ref(), &username, false).await?;
                        println!("enabled {username}");
                        Ok(())
                    }
                    UsersCommand::Remove { username } => {
                        users::remove(store.as_ref(), &username).await?;
                        println!("removed {username}; its sessions have ended");
                        Ok(())
                    }
                }
            }
            Command::Keys {
                command: KeysCommand::Rotate,
                store,
                session_key_file,
            } => {
                confer_app::telemetry::init(LogFormat::Text);
                let config = ServeArgs {
                    data_dir: store.data_dir,
                    config: store.config,
                    session_key_file,
                    ..Default::default()
                }
                .resolve()?;
                let source = KeySource::resolve(config.session_key_file);
                let ring = confer_app::auth::keys::rotate(&source)?;
                println!(
                    "new signing key {} ({} keys in the file); running servers pick it up within seconds",
                    ring.current().id(),
                    ring.keys().len()
                );
                Ok(())
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
