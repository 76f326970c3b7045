//! `vigil user`, `vigil token` and `vigil audit`: accounts, API tokens and the audit log
//! from the command line.

use std::io::Write;

use anyhow::{Context as _, Result};
use chrono::{DateTime, Utc};
use vigil_ticketing::Role;

use super::Context;

#[derive(clap::Subcommand)]
pub enum UserAction {
    /// Add a user with a role: officer, investigator, operator, admin or agency.
    Add {
        name: String,
        #[arg(long)]
        role: String,
    },
    /// Set a user's password (ends their sessions).
    Passwd {
        name: String,
    },
    List,
}

#[derive(clap::Subcommand)]
pub enum TokenAction {
    /// Create a token for a user; it is printed once, only its hash is kept.
    Create {
        user: String,
        #[arg(long, default_value = "cli")]
        label: String,
    },
}

#[derive(clap::Args)]
pub struct AuditArgs {
    /// Only entries at or after this time (RFC 3339).
    #[arg(long)]
    pub since: Option<DateTime<chrono::FixedOffset>>,
}

pub fn user(ctx: &Context, action: UserAction) -> Result<()> {
    ctx.create_data()?;
    let store = ctx.open_store()?;
    match action {
        UserAction::Add { name, role } => {
            let role: Role = role.parse().map_err(anyhow::Error::msg)?;
            let password = read_password()?;
            let user =
                ctx.runtime
                    .block_on(store.create_user(&name, &password, role, Utc::now()))?;
            println!("user {} added ({})", user.username, user.role);
        }
        UserAction::Passwd { name } => {
            let password = read_password()?;
            ctx.runtime.block_on(store.set_password(&name, &password))?;
            println!("password of {name} changed; their sessions ended");
        }
        UserAction::List => {
            for u in ctx.runtime.block_on(store.users())? {
                println!("{:<24} {}", u.username, u.role);
            }
        }
    }
    Ok(())
}

pub fn token(ctx: &Context, action: TokenAction) -> Result<()> {
    let TokenAction::Create { user, label } = action;
    let store = ctx.open_store()?;
    println!(
        "{}",
        ctx.runtime
            .block_on(store.create_api_token(&user, &label, Utc::now()))?
    );
    Ok(())
}

pub fn audit(ctx: &Context, args: AuditArgs) -> Result<()> {
    let store = ctx.open_store()?;
    let mut out = std::io::BufWriter::new(std::io::stdout());
    let n = ctx
        .runtime
        .block_on(store.export_audit(args.since.map(|s| s.to_utc()), &mut out))?;
    out.flush()?;
    eprintln!("{n} audit entries");
    Ok(())
}

fn read_password() -> Result<String> {
    if let Ok(p) = std::env::var("VIGIL_PASSWORD") {
        return Ok(p);
    }
    if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        eprint!("password (at least 12 characters; shown as you type): ");
    }
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("reading the password from stdin")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}
