//! The exit codes of the `memhost` binary, in one table: the binary chooses its code from
//! it ([`ErrorKind::exit_code`]), prints it in `--help` ([`help`]), and a test checks the
//! README's table against it.

use crate::ErrorKind;

/// One exit code and what it means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit {
    /// The process's exit status.
    pub code: u8,
    /// What it means, as `--help` and the README say it.
    pub meaning: &'static str,
}

/// Everything went well.
pub const SUCCESS: Exit = Exit {
    code: 0,
    meaning: "success",
};
/// Standard input or output failed (a closed pipe, a full disk, a read error).
pub const IO: Exit = Exit {
    code: 1,
    meaning: "standard input or output failed",
};
/// The command line is wrong (clap's usage errors, a malformed size, a WAVE value that is
/// not of the function's types, a function the module does not export).
pub const USAGE: Exit = Exit {
    code: 2,
    meaning: "usage error",
};
/// The module cannot be read, is not Wasm, or is too large.
pub const MODULE: Exit = Exit {
    code: 3,
    meaning: "the module cannot be read, is not Wasm or is too large",
};
/// The module does not follow the ABI or exceeds a limit (the input too), or the guest
/// failed at run time.
pub const GUEST: Exit = Exit {
    code: 4,
    meaning: "the module does not follow the ABI or exceeds a limit (the input too), or the guest failed at run time",
};

/// Stopped by SIGINT or SIGTERM (`transform --lines` and `--chunks`): what was written is
/// every result before the point it stopped at, whole.
pub const INTERRUPTED: Exit = Exit {
    code: 130,
    meaning: "stopped by SIGINT or SIGTERM: the output holds whole results of the lines before",
};

/// Every exit code, in order.
pub const TABLE: [Exit; 6] = [SUCCESS, IO, USAGE, MODULE, GUEST, INTERRUPTED];

impl ErrorKind {
    /// The exit code of a failure of this kind.
    pub fn exit_code(self) -> u8 {
        match self {
            ErrorKind::Io => IO.code,
            ErrorKind::Usage => USAGE.code,
            ErrorKind::Module => MODULE.code,
            ErrorKind::Guest => GUEST.code,
            ErrorKind::Interrupted => INTERRUPTED.code,
        }
    }
}

/// The table as `--help` prints it, after the options.
pub fn help() -> String {
    let mut text = String::from("Exit codes:");
    for exit in TABLE {
        text.push_str(&format!("\n  {}  {}", exit.code, exit.meaning));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_and_in_order() {
        for pair in TABLE.windows(2) {
            assert!(pair[0].code < pair[1].code, "{pair:?}");
        }
        assert_eq!(TABLE[0], SUCCESS);
    }
}
