//! The `slashd` command line: serve, migrate, user and token administration, and checks of
//! the config and of plugin files.

use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand, ValueEnum};

use crate::app;
use crate::auth::{password, Role};
use crate::config::{Config, ConfigFile};
use crate::store::{CreateUserError, UserStatus};

mod db;
mod new;
mod plugin;

#[derive(Parser)]
#[command(
    name = "slashd",
    version,
    about = "A chat server whose slash commands are sandboxed plugins"
)]
struct Cli {
    /// Config file (default: ./slashd.toml when it exists). Every key can also be set with
    /// SLASHD_SECTION_KEY environment variables.
    #[arg(long, short, global = true, env = "SLASHD_CONFIG")]
    config: Option<PathBuf>,
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human, env = "SLASHD_LOG_FORMAT")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Human,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Issue tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Write, check, run and list plugins.
    #[command(subcommand)]
    Plugin(plugin::PluginCommand),
    /// Check the configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Move data between databases.
    #[command(subcommand)]
    Db(db::DbCommand),
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Load and validate the config file and the SLASHD_* environment; print a summary.
    Check,
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user; the password is prompted for, or read from stdin.
    Add {
        name: String,
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users.
    List,
    /// Change a user's role (takes effect at once, old tokens included).
    SetRole {
        name: String,
        #[arg(value_parser = parse_role)]
        role: Role,
    },
    /// Disable a user (their tokens stop working at once).
    Disable { name: String },
    /// Enable a disabled user.
    Enable { name: String },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Print a token for a user.
    Issue {
        name: String,
        /// Lifetime, e.g. 1h or 30m (default: auth.token_ttl).
        #[arg(long, value_parser = humantime::parse_duration)]
        ttl: Option<Duration>,
    },
}

fn parse_role(s: &str) -> Result<Role, String> {
    s.parse()
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // A server logs what it does; a command that prints a report (`plugin list` loads
    // every plugin, say) keeps its stderr for warnings unless SLASHD_LOG asks for more.
    // `plugin run` shows what the plugin logs and prints, as the server's log would.
    let default_level = match cli.command {
        Command::Serve => "info",
        Command::Plugin(plugin::PluginCommand::Run(_)) => {
            "warn,slashd::plugin=debug,slashd::plugins=warn"
        }
        _ => "warn",
    };
    init_tracing(cli.log_format, default_level);
    if !matches!(cli.command, Command::Serve) {
        end_quietly_on_a_closed_pipe();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// A report piped into `head` ends when the reader goes, as any Unix tool does. Rust
/// ignores SIGPIPE (right for the server, whose peers hang up all the time), and `println!`
/// then panics on the broken pipe.
fn end_quietly_on_a_closed_pipe() {
    #[cfg(unix)]
    // SAFETY: restoring a signal's default disposition, before any other thread runs.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn init_tracing(format: LogFormat, default_level: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("SLASHD_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new(format!("{default_level},sqlx=warn")));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let file = ConfigFile::new(cli.config.clone());
    let (config, path) = file.load()?;
    match cli.command {
        Command::Config(ConfigCommand::Check) => {
            let plugins = plugin::load_as_the_server_would(&config).await?;
            config_summary(&config, path.as_deref(), &plugins);
            Ok(())
        }
        Command::Plugin(cmd) => plugin::run(cmd, &config).await,
        Command::Db(cmd) => db::run(cmd).await,
        Command::Serve => app::serve(config, file).await,
        Command::Migrate => {
            app::open_store(&config).await?;
            println!("migrations applied");
            Ok(())
        }
        Command::User(cmd) => user(config, cmd).await,
        Command::Token(TokenCommand::Issue { name, ttl }) => {
            let store = app::open_store(&config).await?;
            let keys = app::token_keys(&config)?;
            let Some(user) = store.user_by_name(&name).await? else {
                bail!("no user named {name:?}");
            };
            if user.status == UserStatus::Disabled {
                bail!("user {name:?} is disabled");
            }
            println!(
                "{}",
                keys.issue(&user.id, &user.name, user.role, ttl)?.token
            );
            Ok(())
        }
    }
}

fn config_summary(config: &Config, file: Option<&Path>, plugins: &[crate::plugins::PluginView]) {
    let file = file.map_or("none (defaults)".to_string(), |p| p.display().to_string());
    let auth = &config.auth;
    let keys = match (&auth.jwt_secret, &auth.public_key_pem) {
        (Some(_), _) => "HS256 secret (auth.jwt_secret)".to_string(),
        (None, Some(_)) => {
            "external identity provider (auth.public_key_pem); local login off".to_string()
        }
        (None, None) => format!(
            "HS256 secret generated in {}",
            config.server.data_dir.join("jwt_secret").display()
        ),
    };
    let cluster = match &config.cluster.redis_url {
        Some(url) => format!(
            "Redis {} (namespace {:?})",
            crate::store::redact(url),
            config.cluster.namespace
        ),
        None => "off (one node)".into(),
    };
    let assistant = match &config.assistant {
        Some(a) => format!("{} at {}", a.model, a.base_url),
        None => "off".into(),
    };
    let enabled = plugins.iter().filter(|p| p.state == "enabled").count();
    let refused = plugins.iter().filter(|p| p.state == "refused").count();
    println!("config OK");
    println!("  file       {file} (+ SLASHD_* environment)");
    println!("  listen     {}", config.server.listen);
    println!(
        "  database   {}",
        crate::store::redact(&config.database_url())
    );
    println!("  data dir   {}", config.server.data_dir.display());
    println!(
        "  tokens     {keys}, ttl {}",
        humantime::format_duration(auth.token_ttl)
    );
    println!("  cluster    {cluster}");
    println!("  assistant  {assistant}");
    println!(
        "  plugins    {} configured, {enabled} enabled, {refused} refused (`slashd plugin list` says why)",
        plugins.len()
    );
}

async fn user(config: Config, cmd: UserCommand) -> anyhow::Result<()> {
    let store = app::open_store(&config).await?;
    match cmd {
        UserCommand::Add {
            name,
            role,
            password_stdin,
        } => {
            valid_username(&name)?;
            let secret = if password_stdin {
                read_stdin_password()?
            } else {
                prompt_password()?
            };
            password::validate_new(&secret).map_err(anyhow::Error::msg)?;
            let hash =
                tokio::task::spawn_blocking(move || password::hash_blocking(&secret)).await??;
            match store.create_user(&name, role, Some(&hash)).await {
                Ok(user) => println!(
                    "created user {} ({}) with role {}",
                    user.name, user.id, user.role
                ),
                Err(CreateUserError::NameTaken(n)) => bail!("a user named {n:?} already exists"),
                Err(e) => return Err(e.into()),
            }
        }
        UserCommand::List => {
            println!("{:<24} {:<8} {:<9} ID", "NAME", "ROLE", "STATUS");
            for u in store.list_users().await? {
                let status = if u.status == UserStatus::Disabled {
                    "disabled"
                } else {
                    "active"
                };
                println!(
                    "{:<24} {:<8} {:<9} {}",
                    u.name,
                    u.role.as_str(),
                    status,
                    u.id
                );
            }
        }
        UserCommand::SetRole { name, role } => {
            if !store.set_user_role(&name, role).await? {
                bail!("no user named {name:?}");
            }
            println!("{name} is now {role}");
        }
        UserCommand::Disable { name } => {
            if !store.set_user_status(&name, UserStatus::Disabled).await? {
                bail!("no user named {name:?}");
            }
            println!("{name} is disabled");
        }
        UserCommand::Enable { name } => {
            if !store.set_user_status(&name, UserStatus::Active).await? {
                bail!("no user named {name:?}");
            }
            println!("{name} is enabled");
        }
    }
    Ok(())
}

/// 1–64 characters of letters, digits, `.`, `_` and `-`.
fn valid_username(name: &str) -> anyhow::Result<()> {
    if !crate::store::valid_user_name(name) {
        bail!("user names are 1–64 characters of letters, digits, '.', '_' and '-'");
    }
    Ok(())
}

fn read_stdin_password() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from stdin")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

fn prompt_password() -> anyhow::Result<String> {
    if !std::io::stdin().is_terminal() {
        bail!("no terminal to prompt for a password: use --password-stdin");
    }
    let first = rpassword::prompt_password("Password: ")?;
    let again = rpassword::prompt_password("Again: ")?;
    if first != again {
        bail!("the passwords differ");
    }
    Ok(first)
}
