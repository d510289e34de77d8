//! The operator at the console: what the ceremony says, the confirmations
//! it asks for, and the secrets it reads without echo.

use std::io::{BufRead, IsTerminal, Write};

use zeroize::Zeroizing;

use crate::error::CeremonyError;

/// The ceremony's view of the people running it.
pub trait Operator {
    /// Shows one line (never a secret).
    fn say(&mut self, line: &str);

    /// Asks to go ahead with `action`; `false` stops the ceremony.
    fn confirm(&mut self, action: &str) -> Result<bool, CeremonyError>;

    /// Reads a secret without echo (a PIN, a share).
    fn secret(&mut self, prompt: &str) -> Result<Zeroizing<String>, CeremonyError>;
}

/// The terminal: lines on standard output, `y/N` questions on standard
/// input (unless `assume_yes`), secrets from the controlling terminal with
/// echo off.
#[derive(Debug)]
pub struct Console {
    /// `--yes`: every confirmation is answered yes (and says so).
    pub assume_yes: bool,
}

impl Operator for Console {
    fn say(&mut self, line: &str) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }

    fn confirm(&mut self, action: &str) -> Result<bool, CeremonyError> {
        if self.assume_yes {
            self.say(&format!("==> {action} (--yes)"));
            return Ok(true);
        }
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            return Err(CeremonyError::Refused(format!(
                "'{action}' needs a confirmation, and standard input is not a terminal \
                 (run at a console, or pass --yes)"
            )));
        }
        {
            let mut out = std::io::stdout().lock();
            let _ = write!(out, "==> {action}. Proceed? [y/N] ");
            let _ = out.flush();
        }
        let mut answer = String::new();
        stdin
            .lock()
            .read_line(&mut answer)
            .map_err(|e| CeremonyError::io(std::path::Path::new("<stdin>"), e))?;
        Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes"))
    }

    fn secret(&mut self, prompt: &str) -> Result<Zeroizing<String>, CeremonyError> {
        rpassword::prompt_password(format!("{prompt}: "))
            .map(Zeroizing::new)
            .map_err(|e| {
                CeremonyError::Refused(format!(
                    "cannot read a secret without echo from the terminal ({e}); use a \
                     terminal, or the --share/--pin-file options"
                ))
            })
    }
}
