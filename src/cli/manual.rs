//! Shell completions and man pages, generated from the clap definitions so
//! they cannot drift from the commands.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use clap::CommandFactory;

use crate::cli::Cli;

/// `fortfolio completions SHELL`: the script on stdout.
pub fn print_completions(shell: clap_complete::Shell) -> std::io::Result<()> {
    let mut cmd = Cli::command();
    // Into a buffer first: `generate` panics on a failed write (`| head`).
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, "fortfolio", &mut script);
    let mut out = std::io::stdout().lock();
    out.write_all(&script).and_then(|()| out.flush())
}

/// One page per command and subcommand (`fortfolio.1`,
/// `fortfolio-admin-user-create.1`, …) into `dir`; returns how many.
pub fn write_manpages(dir: &Path) -> anyhow::Result<usize> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut cmd = Cli::command();
    cmd.build();
    let mut written = 0;
    write_tree(&cmd, dir, &mut written)?;
    Ok(written)
}

fn write_tree(cmd: &clap::Command, dir: &Path, written: &mut usize) -> anyhow::Result<()> {
    for sub in cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        write_tree(sub, dir, written)?;
    }
    let page = clap_mangen::Man::new(cmd.clone())
        .source(format!("fortfolio {}", env!("CARGO_PKG_VERSION")))
        .date(env!("FORTFOLIO_BUILD_DATE"))
        .manual("fortfolio manual");
    let path = page
        .generate_to(dir)
        .with_context(|| format!("cannot write a man page into {}", dir.display()))?;
    tracing::debug!(page = %path.display(), "man page written");
    *written += 1;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_visible_command_gets_a_page() {
        let dir = tempfile::tempdir().unwrap();
        let n = write_manpages(dir.path()).unwrap();
        for name in [
            "fortfolio.1",
            "fortfolio-serve.1",
            "fortfolio-admin-user-create.1",
            "fortfolio-health.1",
        ] {
            let text = std::fs::read_to_string(dir.path().join(name)).unwrap();
            assert!(text.contains(".TH"), "{name}");
        }
        assert!(!dir.path().join("fortfolio-manpages.1").exists());
        assert_eq!(n, std::fs::read_dir(dir.path()).unwrap().count());
        assert!(n >= 20, "{n}");
    }
}
