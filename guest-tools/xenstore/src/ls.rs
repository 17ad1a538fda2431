//! `xenstore-ls`: the tree below a path, one node a line, as Xen 4.17's `do_ls`
//! (`tools/xenstore/xenstore_client.c`) prints it.
//!
//! Each node is its name indented by one space per level (with `-f`: its whole path), then
//! ` = "<value>"` with the value escaped ([`crate::escape::sanitise`]), or `:` and an empty
//! line when it cannot be read (Xen prints `":\n"` and then the line's own newline). A line may be at most the width (80, or the terminal's width less 2 when standard
//! output is a terminal): a longer name is cut, a longer value is cut and ends in `\..."`.
//! With `-p` the value is padded with ` .` to column 60 and followed by the permissions,
//! `  (b0,r1)`. Children are listed in the server's order, each right after its parent.
//!
//! - The path given must be listable: else "xs_directory (<path>): <strerror>" and exit 1. A
//!   node below it that disappears meanwhile (`ENOENT`) is skipped; any other failure to list
//!   one ends the run the same way.
//! - A path of 4096 bytes or more is cut to 4095 and not read (shown with `:`).
//!
//! # Invariants
//! - Every line's width arithmetic is Xen's, including its quirks: `-f` removes the width limit
//!   but a terminal's width still applies after it; a negative width (a terminal that reports
//!   0 columns) cuts nothing.

use xenolith_abi::xen::xs_wire::XENSTORE_ABS_PATH_MAX;

use crate::client::{Transport, XBT_NULL};
use crate::errno::Errno;
use crate::escape::sanitise;
use crate::tools::{Exit, Tool};

/// `STRING_MAX`: `XENSTORE_ABS_PATH_MAX` (`xs_wire.h`) + 1024, the buffer Xen composes child
/// paths in.
const STRING_MAX: usize = XENSTORE_ABS_PATH_MAX + 1024;
/// Bytes of `TAG`, ` = "..."`, which Xen reserves on each line.
const TAG_LEN: i64 = 8;

/// The line widths of one run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// The widest a line may be.
    pub max_width: i64,
    /// The column permissions start at (with `-p`).
    pub desired_width: i64,
    /// `-f`: whole paths instead of indented names.
    pub whole_path: bool,
}

impl Layout {
    /// Xen's widths: 80 and 60; `-f` lifts the limit (to `INT_MAX / 2`) and drops the padding;
    /// then a terminal's width (less 2) replaces the limit.
    pub fn new(flat: bool, columns: Option<u16>) -> Layout {
        let mut layout = Layout { max_width: 80, desired_width: 60, whole_path: false };
        if flat {
            layout =
                Layout { max_width: i64::from(i32::MAX / 2), desired_width: 0, whole_path: true };
        }
        if let Some(columns) = columns {
            layout.max_width = i64::from(columns) - 2;
        }
        layout
    }
}

/// `%.*s`: at most `precision` bytes of `text`; a negative precision is none.
fn cut(text: &[u8], precision: i64) -> &[u8] {
    match usize::try_from(precision) {
        Ok(precision) => &text[..text.len().min(precision)],
        Err(_) => text,
    }
}

impl<T: Transport> Tool<'_, T> {
    /// `do_ls` of `path` at indentation `depth`.
    pub(crate) fn ls(
        &mut self,
        path: &[u8],
        depth: usize,
        show_permissions: bool,
        layout: &Layout,
    ) -> Result<(), Exit> {
        let names = match self.client.directory(XBT_NULL, path) {
            Ok(names) => names,
            Err(Errno::ENOENT) if depth > 0 => return Ok(()),
            Err(errno) => {
                self.warn_errno(&[b"xs_directory (", path, b")"].concat(), errno);
                return Err(Exit);
            }
        };
        for name in names {
            let separator: &[u8] = if path.last() == Some(&b'/') { b"" } else { b"/" };
            let mut child = [path, separator, name.as_slice()].concat();
            let too_long = child.len() >= STRING_MAX;
            child.truncate(STRING_MAX - 1);

            let mut width: i64 = 0;
            if layout.whole_path {
                self.print(&child);
            } else {
                self.print(&vec![b' '; depth]);
                width = depth as i64;
                let shown = cut(&name, layout.max_width - TAG_LEN - width);
                self.print(shown);
                width += shown.len() as i64;
            }

            let value = if too_long { None } else { self.client.read(XBT_NULL, &child).ok() };
            match value {
                None => self.print(b":\n"),
                Some(value) => {
                    let shown = sanitise(&value);
                    // Xen compares in `size_t`: a negative width is never exceeded.
                    let needed = width + value.len() as i64 + TAG_LEN;
                    if layout.max_width >= 0 && layout.max_width < needed {
                        let precision = layout.max_width - TAG_LEN - width;
                        let line = [b" = \"", cut(shown.as_bytes(), precision), b"\\...\""];
                        self.print(&line.concat());
                    } else {
                        self.print(&[b" = \"", shown.as_bytes(), b"\""].concat());
                        width += shown.len() as i64 + 5;
                        if show_permissions {
                            self.print(b" ");
                            width += 1;
                            while width < layout.desired_width.min(layout.max_width) {
                                self.print(if width & 1 == 1 { b"." } else { b" " });
                                width += 1;
                            }
                        }
                    }
                }
            }

            if show_permissions {
                match self.client.get_permissions(XBT_NULL, &child) {
                    Ok(permissions) => {
                        let texts: Vec<String> =
                            permissions.iter().map(|permission| permission.to_text()).collect();
                        self.print(format!("  ({})", texts.join(",")).as_bytes());
                    }
                    Err(errno) => {
                        let text = [b"\ncould not access permissions for ", name.as_slice()];
                        self.warn_errno(&text.concat(), errno);
                    }
                }
            }
            self.print(b"\n");
            self.ls(&child, depth + 1, show_permissions, layout)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths_are_xens() {
        assert_eq!(
            Layout::new(false, None),
            Layout { max_width: 80, desired_width: 60, whole_path: false }
        );
        let flat = Layout::new(true, None);
        assert_eq!((flat.max_width, flat.desired_width), (1_073_741_823, 0));
        assert_eq!(Layout::new(true, Some(100)).max_width, 98, "the terminal wins over -f");
        assert_eq!(Layout::new(false, Some(0)).max_width, -2);
        assert_eq!(cut(b"abcdef", 3), b"abc");
        assert_eq!(cut(b"ab", 3), b"ab");
        assert_eq!(cut(b"abc", -1), b"abc");
    }
}
