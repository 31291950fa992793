//! `sudo fortfolio admin …` on a packaged install, where the service runs as
//! user `fortfolio` and owns its data dir: root first becomes that user, so
//! nothing the command writes (the database with the server stopped, a key
//! file on restore, a line of the security log) ends up owned by root where
//! the service could no longer read it.

use std::os::unix::fs::MetadataExt;
use std::sync::OnceLock;

use anyhow::Context;
use nix::unistd::{geteuid, setgid, setgroups, setuid, Gid, Uid};

use crate::config::Config;

/// Root becomes the owner of the data dir when that is another user; anyone
/// else is left as they are (the data dir's 0700 mode decides). The Unix
/// user who ran the command is recorded first, for the admin events.
pub fn become_data_dir_owner(config: &Config) -> anyhow::Result<()> {
    actor();
    if !geteuid().is_root() {
        return Ok(());
    }
    let dir = config.data_dir();
    let Ok(meta) = std::fs::metadata(dir) else {
        return Ok(()); // not created yet: whoever runs the server first will own it
    };
    if meta.uid() == 0 {
        return Ok(());
    }
    let (uid, gid) = (Uid::from_raw(meta.uid()), Gid::from_raw(meta.gid()));
    let context = || format!("cannot switch to the owner (uid {uid}) of {}", dir.display());
    // Groups first: after setuid there is no permission left to change them.
    setgroups(&[gid]).with_context(context)?;
    setgid(gid).with_context(context)?;
    setuid(uid).with_context(context)?;
    Ok(())
}

/// Who ran this command, as admin events name it: `cli:alice via sudo
/// (uid 0)`, `cli:root (uid 0)`, `cli:fortfolio (uid 998)`. Taken once, before
/// any change of user.
pub fn actor() -> &'static str {
    static ACTOR: OnceLock<String> = OnceLock::new();
    ACTOR.get_or_init(|| {
        let uid = std::fs::metadata("/proc/self").map(|m| m.uid()).ok();
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let name = var("USER").or_else(|| var("LOGNAME"));
        let name = match (uid, var("SUDO_USER")) {
            (Some(0), Some(sudoer)) => Some(format!("{sudoer} via sudo")),
            _ => name,
        };
        match (name, uid) {
            (Some(n), Some(u)) => format!("cli:{n} (uid {u})"),
            (Some(n), None) => format!("cli:{n}"),
            (None, Some(u)) => format!("cli:uid {u}"),
            (None, None) => "cli".to_string(),
        }
    })
}
