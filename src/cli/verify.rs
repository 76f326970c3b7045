//! `vigil verify` and `vigil key`: evidence packages checked against their manifests,
//! signatures and the deployment's key; the public key printed for whoever must check.

use std::path::PathBuf;

use anyhow::{Result, bail};
use vigil_pipeline::output::signing::{self, EvidenceKey};

use super::Context;

#[derive(clap::Args)]
pub struct VerifyArgs {
    /// Trusted public key (64 hex digits); default: this data folder's signing key.
    #[arg(long)]
    pub public_key: Option<String>,
    #[arg(required = true)]
    pub folders: Vec<PathBuf>,
}

pub fn run(ctx: &Context, args: VerifyArgs) -> Result<()> {
    let folders = &args.folders;
    let trusted = match args.public_key.as_deref() {
        Some(k) => signing::parse_public_key(k)?,
        None => {
            let keys = ctx.data.keys();
            if !keys.join("evidence-signing.key").is_file() {
                bail!(
                    "no signing key in {}; pass the trusted key with --public-key",
                    keys.display()
                );
            }
            EvidenceKey::load_or_create(&keys)?.verifying_key()
        }
    };
    let mut bad = 0;
    for folder in folders {
        let problems = signing::verify_package(folder, &trusted);
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

pub fn key(ctx: &Context) -> Result<()> {
    println!("{}", ctx.key()?.public_hex());
    Ok(())
}
