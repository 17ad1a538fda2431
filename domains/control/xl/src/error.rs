//! What a failed command prints, and the status xl would exit with.
//!
//! xl reports a failure by printing to standard error (sometimes after part of its output) and
//! exiting with a status: 2 for a usage error found by its option parser (`def_getopt` in
//! `tools/xl/xl_utils.c`, and `xl create` with a second configuration file), 1
//! (`EXIT_FAILURE`) otherwise. An [`XlError`] carries both: its text is exactly what xl would
//! print, newlines included, so a caller writes it as it is (`write!(console, "{error}")`).

use alloc::string::String;
use core::fmt;

/// A command that failed, with xl's words for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XlError {
    /// The status xl would exit with: 1, or 2 for a usage error.
    pub status: u8,
    /// What xl would print (to standard error; for a usage error, followed by the command's
    /// help, which xl prints to standard output), ending in a newline.
    pub text: String,
}

impl XlError {
    /// A failure (`EXIT_FAILURE`) printing `text`.
    pub fn failure(text: impl Into<String>) -> Self {
        Self { status: 1, text: text.into() }
    }

    /// A usage error (status 2) printing `text`.
    pub fn usage(text: impl Into<String>) -> Self {
        Self { status: 2, text: text.into() }
    }

    /// Whether xl would exit with status 2 (a usage error).
    pub fn is_usage(&self) -> bool {
        self.status == 2
    }
}

impl fmt::Display for XlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}
