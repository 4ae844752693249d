//! Reading a PIN for a command: from its environment variable, or else from the next line
//! of stdin — never from the command line, where other users of the machine see it (`ps`,
//! the shell's history). At a terminal the line is read with echo off, so the PIN is not
//! shown on the screen as it is typed; piped stdin is read as it is.

use anyhow::{bail, Context};
use std::io::{BufRead, IsTerminal, Write};

/// The PIN in the environment variable `env`: `None` when it is unset or empty (then the
/// PIN is read from stdin, as when the variable is absent).
///
/// # Errors
/// The variable is set but not UTF-8.
pub fn env_pin(env: &str) -> anyhow::Result<Option<String>> {
    match std::env::var(env) {
        Ok(pin) if !pin.is_empty() => Ok(Some(pin)),
        Ok(_) | Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => bail!("{env} is not UTF-8"),
    }
}

/// A PIN from stdin's next line (without the line end), prompting `what` on stderr at a
/// terminal and reading it there with echo off; the error names the environment variable
/// `env` that could give it instead.
///
/// # Errors
/// stdin unreadable, or the line empty.
pub fn read_pin_line(what: &str, env: &str) -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    let mut line = String::new();
    if stdin.is_terminal() {
        eprint!("{what}: ");
        let _ = std::io::stderr().flush();
        let silenced = EchoOff::on(&stdin);
        let read = stdin.lock().read_line(&mut line);
        drop(silenced);
        // The Enter typed was not echoed either: end the prompt's line.
        eprintln!();
        read.with_context(|| format!("cannot read the {what} from the terminal"))?;
    } else {
        stdin
            .lock()
            .read_line(&mut line)
            .with_context(|| format!("cannot read the {what} from stdin"))?;
    }
    let pin = line.trim_end_matches(['\r', '\n']).to_owned();
    if pin.is_empty() {
        bail!("no {what}: set {env} or type it on stdin");
    }
    Ok(pin)
}

/// A terminal's echo turned off while this lives (its settings as they were restored when
/// dropped).
pub struct EchoOff<Fd: rustix::fd::AsFd> {
    terminal: Fd,
    restore: Option<rustix::termios::Termios>,
}

impl<Fd: rustix::fd::AsFd> EchoOff<Fd> {
    /// Turns echo off on `terminal`. A descriptor whose settings cannot be read or set (not
    /// a terminal after all) is left as it is: the line is read all the same.
    pub fn on(terminal: Fd) -> Self {
        use rustix::termios::{tcgetattr, tcsetattr, LocalModes, OptionalActions};
        let restore = tcgetattr(&terminal).ok().filter(|settings| {
            let mut silent = settings.clone();
            silent.local_modes.remove(LocalModes::ECHO);
            tcsetattr(&terminal, OptionalActions::Now, &silent).is_ok()
        });
        Self { terminal, restore }
    }

    /// Whether echo was turned off here (and is restored on drop).
    pub fn silenced(&self) -> bool {
        self.restore.is_some()
    }
}

impl<Fd: rustix::fd::AsFd> Drop for EchoOff<Fd> {
    fn drop(&mut self) {
        if let Some(settings) = &self.restore {
            // Nothing more can be done if the terminal refuses: it is going away.
            let _ = rustix::termios::tcsetattr(
                &self.terminal,
                rustix::termios::OptionalActions::Now,
                settings,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::termios::{tcgetattr, LocalModes};

    /// A pseudo-terminal pair: (controller, the terminal a program reads from).
    fn pty() -> (rustix::fd::OwnedFd, std::fs::File) {
        use rustix::pty::{grantpt, openpt, ptsname, unlockpt, OpenptFlags};
        let controller = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).expect("a pty");
        grantpt(&controller).expect("grantpt");
        unlockpt(&controller).expect("unlockpt");
        let name = ptsname(&controller, Vec::new()).expect("its name");
        let name = name.to_str().expect("a UTF-8 path").to_owned();
        let terminal = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(name)
            .expect("its terminal");
        (controller, terminal)
    }

    #[test]
    fn echo_is_off_while_the_pin_is_read_and_restored_after() {
        let (_controller, terminal) = pty();
        let echo = |fd: &std::fs::File| {
            tcgetattr(fd)
                .expect("settings")
                .local_modes
                .contains(LocalModes::ECHO)
        };
        assert!(echo(&terminal), "a new terminal echoes");
        let before = tcgetattr(&terminal).expect("settings");
        {
            let silenced = EchoOff::on(&terminal);
            assert!(silenced.silenced());
            assert!(!echo(&terminal), "no echo while the PIN is typed");
        }
        assert!(echo(&terminal), "echo is back");
        let after = tcgetattr(&terminal).expect("settings");
        assert_eq!(after.local_modes, before.local_modes);
    }

    #[test]
    fn a_descriptor_that_is_no_terminal_is_left_alone() {
        let file = tempfile::tempfile().expect("a file");
        let silenced = EchoOff::on(&file);
        assert!(!silenced.silenced());
    }

    #[test]
    fn the_variable_gives_the_pin_unless_empty() {
        // Variables no other test reads.
        assert_eq!(
            env_pin("POSMESH_TEST_PIN_PROMPT_UNSET").expect("unset"),
            None
        );
        std::env::set_var("POSMESH_TEST_PIN_PROMPT_EMPTY", "");
        assert_eq!(
            env_pin("POSMESH_TEST_PIN_PROMPT_EMPTY").expect("empty"),
            None
        );
        std::env::set_var("POSMESH_TEST_PIN_PROMPT_SET", "2468");
        assert_eq!(
            env_pin("POSMESH_TEST_PIN_PROMPT_SET")
                .expect("set")
                .as_deref(),
            Some("2468")
        );
    }
}
