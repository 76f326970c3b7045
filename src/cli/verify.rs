//! `vigil verify` and `vigil key`: evidence packages checked against their manifests, their
//! signatures, the keys the case database trusts and the manifests its cases recorded;
//! the deployment's public key printed, and other machines' keys trusted or revoked.

use std::path::PathBuf;

use anyhow::{Result, bail};
use serde_json::json;
use sha2::{Digest, Sha256};
use vigil_evidence::{TrustedKeys, parse_public_key, read_manifest, verify_package};

use super::Context;
use super::users::audited;

#[derive(clap::Args)]
pub struct VerifyArgs {
    /// Trust only this public key (64 hex digits), and check the folders alone, without
    /// the case database (for whoever is handed packages and the key). Default: the keys
    /// the case database trusts, and each package against the case that recorded it.
    #[arg(long)]
    pub public_key: Option<String>,
    #[arg(required = true)]
    pub folders: Vec<PathBuf>,
}

#[derive(clap::Subcommand)]
pub enum KeyAction {
    /// Print the public key this data folder signs evidence with (made on first use).
    Show,
    /// Trust another machine's key (a worker's, printed there by `vigil key`): the service
    /// takes packages it signs. Audited.
    Trust {
        public_key: String,
        #[arg(long, default_value = "worker")]
        label: String,
    },
    /// Stop trusting a key: its packages are no longer taken, nor verify. Audited.
    Revoke { public_key: String },
    /// The keys the case database trusts, and when each was pinned or revoked.
    List,
}

pub fn run(ctx: &Context, args: VerifyArgs) -> Result<()> {
    let folders = &args.folders;
    let (trusted, store) = match args.public_key.as_deref() {
        Some(k) => (TrustedKeys::one(parse_public_key(k)?), None),
        None => {
            let store = ctx.open_store()?;
            if ctx
                .data
                .keys()
                .join(vigil_evidence::key::KEY_FILE)
                .is_file()
                && let Some(changed) = ctx.pin_key(&store)?
            {
                println!("WARNING: {changed}");
            }
            let trusted = ctx.runtime.block_on(store.trusted_keys())?;
            if trusted.is_empty() {
                bail!(
                    "the case database trusts no key yet; pass the trusted key with --public-key"
                );
            }
            (trusted, Some(store))
        }
    };
    let mut bad = 0;
    for folder in folders {
        let mut problems: Vec<String> = verify_package(folder, &trusted)
            .iter()
            .map(|p| p.to_string())
            .collect();
        if let Some(store) = &store {
            problems.extend(against_its_case(ctx, store, folder)?);
        }
        if problems.is_empty() {
            println!("{}: OK", folder.display());
        } else {
            bad += 1;
            println!("{}: FAILED", folder.display());
            for p in problems {
                println!("  {p}");
            }
        }
    }
    if bad > 0 {
        bail!(
            "{bad} of {} evidence folder(s) failed verification",
            folders.len()
        );
    }
    Ok(())
}

/// What is wrong between a package and the case that recorded its event: a package whose
/// manifest is not the one the case recorded is not the case's evidence, however intact.
fn against_its_case(
    ctx: &Context,
    store: &vigil_ticketing::CaseStore,
    folder: &std::path::Path,
) -> Result<Vec<String>> {
    let Ok((manifest, bytes)) = read_manifest(folder) else {
        return Ok(Vec::new());
    };
    let Some(event_id) = manifest.event_id else {
        return Ok(Vec::new());
    };
    let recorded = ctx
        .runtime
        .block_on(store.event_by_id(&event_id.to_string()))?;
    Ok(match recorded {
        None => vec![format!(
            "event {event_id}: no case in the case database records it"
        )],
        Some((case_id, event)) => {
            let sha = hex::encode(Sha256::digest(&bytes));
            if sha.eq_ignore_ascii_case(&event.evidence_manifest_sha256) {
                Vec::new()
            } else {
                vec![format!(
                    "manifest.json: case {case_id} recorded the manifest {}, this one is {sha}",
                    event.evidence_manifest_sha256
                )]
            }
        }
    })
}

pub fn key(ctx: &Context, action: Option<KeyAction>) -> Result<()> {
    let now = chrono::Utc::now();
    match action.unwrap_or(KeyAction::Show) {
        KeyAction::Show => println!("{}", ctx.key()?.public_hex()),
        KeyAction::Trust { public_key, label } => {
            let store = ctx.open_store()?;
            let hex_key = hex::encode(parse_public_key(&public_key)?.as_bytes());
            let new = ctx
                .runtime
                .block_on(store.trust_key(&hex_key, &label, now))?;
            if new {
                audited(
                    ctx,
                    &store,
                    "key_trusted",
                    &hex_key,
                    json!({"label": label}),
                )?;
                println!("key {hex_key} trusted ({label})");
            } else {
                println!("key {hex_key} was already trusted");
            }
        }
        KeyAction::Revoke { public_key } => {
            let store = ctx.open_store()?;
            if !ctx.runtime.block_on(store.revoke_key(&public_key, now))? {
                bail!("no trusted key {public_key}");
            }
            audited(ctx, &store, "key_revoked", public_key.trim(), json!({}))?;
            println!("key {} revoked", public_key.trim());
        }
        KeyAction::List => {
            let store = ctx.open_store()?;
            for k in ctx.runtime.block_on(store.signing_keys())? {
                let state = match k.revoked_at {
                    Some(t) => format!("revoked {t}"),
                    None => "trusted".into(),
                };
                println!(
                    "{}  {}  pinned {}  {state}",
                    k.public_key, k.label, k.pinned_at
                );
            }
        }
    }
    Ok(())
}
