//! `carewell users`: the console's accounts, offline (reads DATABASE_URL), so the first owner
//! can be made before anyone can log in.
//!
//! `carewell users add --name alice --role owner` reads the password from the first line of
//! standard input (`printf '%s\n' "$PASSWORD" | carewell users add …`), never from the command
//! line, where other users of the machine could read it.

use std::io::BufRead;
use std::process::ExitCode;

use clap::Subcommand;

use crate::server::auth::{self, Role};

/// `users` subcommands.
#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Create a user; the password is read from standard input.
    Add {
        /// Login name.
        #[arg(long)]
        name: String,
        /// owner, admin, agent or viewer.
        #[arg(long)]
        role: String,
    },
    /// List the users.
    List,
}

/// Runs a `users` subcommand; errors are printed and give exit code 1.
pub async fn run(command: UsersCommand) -> ExitCode {
    match go(command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("users: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn go(command: UsersCommand) -> Result<(), String> {
    let store = super::open_store().await?;
    let tenant = super::cli_tenant()?;
    match command {
        UsersCommand::Add { name, role } => {
            let role = Role::parse(&role).ok_or("--role must be owner, admin, agent or viewer")?;
            eprintln!("password for {name} (one line on standard input):");
            let mut password = String::new();
            std::io::stdin().lock().read_line(&mut password).map_err(|e| format!("reading the password: {e}"))?;
            let password = password.trim_end_matches(['\n', '\r']).to_string();
            crate::server::console::check_new_user(None, &name, role, &password).map_err(|_| {
                format!(
                    "a name has 2 to 64 letters, digits, '.', '_', '-' or '@'; a password at least {} characters",
                    auth::MIN_PASSWORD
                )
            })?;
            if store.user_named(&name).await.map_err(|e| e.to_string())?.is_some() {
                return Err(format!("a user named {name:?} exists"));
            }
            let hash = auth::hash_password(&password)?;
            let id = store
                .create_user(&tenant, &name, role.as_str(), &hash, crate::store::now_ms())
                .await
                .map_err(|e| e.to_string())?;
            let entry = crate::store::NewAudit {
                tenant: tenant.to_string(),
                at: crate::store::now_ms(),
                actor: "command line".into(),
                actor_kind: "break_glass".into(),
                action: "user.create".into(),
                target: name.clone(),
                outcome: "ok".into(),
                address: None,
                detail: serde_json::json!({"role": role.as_str()}).to_string(),
            };
            store.audit(entry).await.map_err(|e| e.to_string())?;
            println!("user {name} ({}) of tenant {tenant} created with id {id}", role.as_str());
        }
        UsersCommand::List => {
            for u in store.users(&tenant).await.map_err(|e| e.to_string())? {
                let state = if u.disabled_at.is_some() { "disabled" } else { "active" };
                println!("{:<24} {:<8} {state}", u.name, u.role);
            }
        }
    }
    Ok(())
}
