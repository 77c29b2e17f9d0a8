//! `slashd db copy`: the way from one node on SQLite to many on PostgreSQL.

use std::io::{IsTerminal, Write};

use clap::Subcommand;

use crate::store::copy::{self, Progress};
use crate::store::redact;

#[derive(Subcommand)]
pub enum DbCommand {
    /// Copy a SQLite database (stopped server) into an empty PostgreSQL database: users,
    /// sessions, members, messages with their seqs, plugin kv, audit. All or nothing; the
    /// counts are verified at the end.
    Copy {
        /// The source, e.g. sqlite://data/slashd.db (never written to).
        #[arg(long)]
        from: String,
        /// The target, e.g. postgres://slashd@db/slashd: migrated, and refused unless empty.
        #[arg(long)]
        to: String,
    },
}

pub async fn run(cmd: DbCommand) -> anyhow::Result<()> {
    match cmd {
        DbCommand::Copy { from, to } => {
            let mut bar = Bar::new();
            let copied = copy::copy(&from, &to, |p| bar.show(p)).await;
            bar.finish();
            let copied = copied?;
            println!("copied {} into {}:", redact(&from), redact(&to));
            for (table, rows) in copied {
                println!("  {table:<16} {rows:>10}");
            }
            println!("verified before commit: every table's count, and the seqs (the messages' sum and highest, the sessions' last_seq), match the source");
            Ok(())
        }
    }
}

/// Progress on standard error: one line redrawn in place on a terminal, one line per
/// finished table otherwise (a log, a pipe).
struct Bar {
    terminal: bool,
    drawn: bool,
}

impl Bar {
    fn new() -> Bar {
        Bar {
            terminal: std::io::stderr().is_terminal(),
            drawn: false,
        }
    }

    fn show(&mut self, p: Progress<'_>) {
        let percent = (p.copied.saturating_mul(100))
            .checked_div(p.total)
            .unwrap_or(100);
        let mut err = std::io::stderr().lock();
        if self.terminal {
            let width = 30u64;
            let filled = usize::try_from(percent.min(100) * width / 100).unwrap_or(0);
            let _ = write!(
                err,
                "\r{:<16} [{:<30}] {:>10}/{:<10} {percent:>3}%",
                p.table,
                "#".repeat(filled),
                p.copied,
                p.total
            );
            if p.copied == p.total {
                let _ = writeln!(err);
                self.drawn = false;
            } else {
                self.drawn = true;
            }
        } else if p.copied == p.total {
            let _ = writeln!(err, "{}: {} rows", p.table, p.total);
        }
        let _ = err.flush();
    }

    fn finish(&mut self) {
        if self.drawn {
            let _ = writeln!(std::io::stderr());
        }
    }
}
