//! `vigil user`, `vigil token` and `vigil audit`: accounts, API tokens and the audit log
//! from the command line.

use std::io::Write;

use anyhow::{Context as _, Result};
use chrono::{DateTime, Utc};
use serde_json::json;
use vigil_core::local_time::local_seconds;
use vigil_ticketing::Role;
use vigil_ticketing::audit::AuditRecord;

use super::Context;

#[derive(clap::Subcommand)]
pub enum UserAction {
    /// Add a user with a role: officer, investigator, operator, admin or agency.
    Add {
        name: String,
        #[arg(long)]
        role: String,
    },
    /// Set a user's password (ends their sessions and revokes their API tokens).
    Passwd {
        name: String,
    },
    /// Disable a user: no login, sessions ended, tokens revoked (never the last admin).
    Disable {
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
    /// Revoke a user's tokens: those of `--label`, or all of them.
    Revoke {
        user: String,
        #[arg(long)]
        label: Option<String>,
    },
    /// A user's tokens: label, when made, when revoked.
    List { user: String },
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
    let rt = &ctx.runtime;
    match action {
        UserAction::Add { name, role } => {
            let role: Role = role.parse().map_err(anyhow::Error::msg)?;
            let password = read_password()?;
            let user = rt.block_on(store.create_user(&name, &password, role, Utc::now()))?;
            audited(
                ctx,
                &store,
                "user_created",
                &user.username,
                json!({"role": user.role}),
            )?;
            println!("user {} added ({})", user.username, user.role);
        }
        UserAction::Passwd { name } => {
            let password = read_password()?;
            rt.block_on(store.set_password(&name, &password, Utc::now()))?;
            audited(ctx, &store, "password_set", &name, json!({}))?;
            println!("password of {name} changed; their sessions ended and their tokens revoked");
        }
        UserAction::Disable { name } => {
            rt.block_on(store.disable_user(&name, Utc::now()))?;
            audited(ctx, &store, "user_disabled", &name, json!({}))?;
            println!("user {name} disabled; their sessions ended and their tokens revoked");
        }
        UserAction::List => {
            for u in rt.block_on(store.users())? {
                println!("{:<24} {}", u.username, u.role);
            }
        }
    }
    Ok(())
}

pub fn token(ctx: &Context, action: TokenAction) -> Result<()> {
    let store = ctx.open_store()?;
    let rt = &ctx.runtime;
    match action {
        TokenAction::Create { user, label } => {
            let token = rt.block_on(store.create_api_token(&user, &label, Utc::now()))?;
            audited(ctx, &store, "token_created", &user, json!({"label": label}))?;
            println!("{token}");
        }
        TokenAction::Revoke { user, label } => {
            let n = rt.block_on(store.revoke_tokens(&user, label.as_deref(), Utc::now()))?;
            audited(
                ctx,
                &store,
                "tokens_revoked",
                &user,
                json!({"label": label, "revoked": n}),
            )?;
            println!("{n} token(s) of {user} revoked");
        }
        TokenAction::List { user } => {
            for t in rt.block_on(store.api_tokens(&user))? {
                let revoked = t
                    .revoked_at
                    .map(|r| format!("revoked {}", local_seconds(r)))
                    .unwrap_or_else(|| "active".into());
                println!("{:<24} {}  {revoked}", t.label, local_seconds(t.created_at));
            }
        }
    }
    Ok(())
}

/// An account change made from the command line, in the audit log as the account that
/// ran the command.
pub(super) fn audited(
    ctx: &Context,
    store: &vigil_ticketing::CaseStore,
    action: &str,
    target: &str,
    detail: serde_json::Value,
) -> Result<()> {
    let actor = super::search::cli_actor();
    ctx.runtime.block_on(store.audit(
        Utc::now(),
        AuditRecord {
            actor: &actor,
            action,
            target: Some(target.to_string()),
            detail: Some(detail),
            ..Default::default()
        },
    ))?;
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
