//! Writes the man page and the shell completions of `inetd-health` from its
//! clap definitions, so that neither is a hand-written copy that drifts:
//!
//! ```sh
//! scripts/docs        # target/man/inetd-health.1, target/completions/*
//! ```
//!
//! A program of its own, not an option of `inetd-health`: the generators
//! would otherwise be part of a binary that every poll starts.

// The command line's definition, shared with the binary it documents.
#[allow(dead_code)]
#[path = "../args.rs"]
mod args;
#[allow(dead_code)]
#[path = "../doctor.rs"]
mod doctor;
#[allow(dead_code)]
#[path = "../gen.rs"]
mod gen;

use std::path::PathBuf;

use clap_complete::Shell;

fn main() -> std::io::Result<()> {
    let out = std::env::args_os()
        .nth(1)
        .map_or_else(|| PathBuf::from("target"), PathBuf::from);
    let man_dir = out.join("man");
    let completion_dir = out.join("completions");
    std::fs::create_dir_all(&man_dir)?;
    std::fs::create_dir_all(&completion_dir)?;

    let command = args::command();
    // The main page, and one per check (`inetd-health-exec(1)`…), which
    // the main page's SUBCOMMANDS section names.
    let mut pages = vec![("inetd-health".to_owned(), command.clone())];
    for sub in command.get_subcommands() {
        // clap takes a static name; this program runs once and exits.
        let name: &'static str =
            Box::leak(format!("inetd-health-{}", sub.get_name()).into_boxed_str());
        pages.push((name.to_owned(), sub.clone().name(name)));
    }
    for (name, page_command) in pages {
        let mut page = Vec::new();
        clap_mangen::Man::new(page_command).render(&mut page)?;
        let man = man_dir.join(format!("{name}.1"));
        std::fs::write(&man, page)?;
        println!("{}", man.display());
    }

    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        let mut command = command.clone();
        let file =
            clap_complete::generate_to(shell, &mut command, "inetd-health", &completion_dir)?;
        println!("{}", file.display());
    }
    Ok(())
}
