//! `agentplane token mint`: a development token signed with the local dev key, printed alone on
//! stdout so it can be captured (`TOKEN=$(agentplane token mint ...)`).

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use serde_json::json;
use uuid::Uuid;

use crate::app::config::Config;
use crate::app::local_key::LocalKey;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Print a signed token.
    Mint(MintArgs),
}

#[derive(Debug, clap::Args)]
pub struct MintArgs {
    /// The tenant (a UUID).
    #[arg(long)]
    tenant: Uuid,
    /// The subject (user or agent name).
    #[arg(long, default_value = "dev")]
    sub: String,
    /// Space-separated scopes, e.g. "search:read docs:write".
    #[arg(long, default_value = "search:read")]
    scopes: String,
    /// Lifetime in seconds; a negative one mints an already expired token, for testing refusals.
    #[arg(long, default_value_t = 3600, allow_negative_numbers = true)]
    ttl: i64,
    /// Rate-limit tier (free, pro, enterprise, or one from the config).
    #[arg(long, default_value = "free")]
    tier: String,
}

pub fn run(config: Config, Command::Mint(args): Command) -> anyhow::Result<()> {
    let key = LocalKey::load_or_create(&config.data_dir)?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).context("system clock is before 1970")?.as_secs();
    let expires = now.saturating_add_signed(args.ttl);
    let claims = json!({
        "iss": config.issuer(),
        "aud": config.audience(),
        "sub": args.sub,
        "tenant_id": args.tenant,
        "scope": args.scopes,
        "tier": args.tier,
        "jti": Uuid::new_v4(),
        "iat": now.min(expires),
        "nbf": now.min(expires),
        "exp": expires,
    });
    println!("{}", key.sign(&claims)?);
    Ok(())
}
