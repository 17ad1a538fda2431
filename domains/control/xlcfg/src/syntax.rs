//! libxlu's configuration-file syntax: tokens, grammar and `+=`.
//!
//! Why it exists: every xl.cfg file is first read as a flat list of `KEY = VALUE` settings with no
//! knowledge of what the keys mean; [`crate::domain`] then reads the keys. This mirrors Xen, where
//! libxlu (`tools/libs/util/libxlu_cfg*.{l,y,c}`) does the former and xl (`tools/xl/xl_parse.c`) the
//! latter.
//!
//! # Rules (facts read from Xen 4.17's `tools/libs/util/`)
//! - Tokens (`libxlu_cfg_l.l`): a key is `[a-z][._0-9a-z]*` (no capitals); a number is
//!   `[0-9][0-9a-fx]*` kept as its text (so `0x1f` is one number, `0x1F` is `0x1` then an error);
//!   a string is `'…'` or `"…"` on one line, where a backslash takes the next character; spaces and
//!   tabs separate tokens; a newline, or `#` up to and including the next newline, ends a line (so a
//!   `#` comment on the last line with no newline after it is a lexical error, as in xl); any other
//!   character, carriage return included, is a lexical error. `+ - . ( ) :` make libxlu say the
//!   file looks like Python.
//! - Escapes (`xlu__cfgl_dequote` in `libxlu_cfg.c`): `\" \' \\ \a \b \f \n \r \t \v`. libxlu's
//!   `\x` branch can never succeed (it skips one digit, then demands more than two digits out of a
//!   two-character buffer) and its octal branch converts in base 10 and never stores the result, so
//!   both are refused here with a clear reason; any other escaped character is refused as
//!   libxlu refuses it ("invalid character after backlash in quoted string", sic).
//! - Grammar (`libxlu_cfg_y.y`): `KEY = VALUE` or `KEY += VALUE`, each ended by a newline or `;`
//!   (the last one may instead end the file); empty statements are allowed; a value is a string, a
//!   number, or `[` list `]`; lists nest, may be empty, may end with one trailing comma, and allow
//!   newlines after `[`, after each value and after each comma.
//! - Settings (`xlu__cfg_set_store`, `find` in `libxlu_cfg.c`): a later setting of a key replaces
//!   an earlier one. `KEY += VALUE` with an earlier setting concatenates strings or appends lists;
//!   mixing the two is "can't add [list] to \"string\" or vice versa". Without an earlier setting
//!   `+=` is a plain setting, still marked as an addition (xl refuses `+=` on numbers).
//!
//! # Limits
//! libxlu keeps parsing after an error to report more; this parser stops at the first error.
//! libxlu reports only a line; we add the column (1-based, in characters).

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

/// A refused configuration: where, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line.
    pub line: u32,
    /// 1-based column, in characters.
    pub column: u32,
    /// The reason, in the words of Xen's message where Xen has one.
    pub message: String,
}

impl ParseError {
    pub(crate) fn at(pos: Pos, message: impl Into<String>) -> Self {
        Self { line: pos.line, column: pos.column, message: message.into() }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "config:{}:{}: {}", self.line, self.column, self.message)
    }
}

/// A position in the file (1-based line and column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    /// 1-based line.
    pub line: u32,
    /// 1-based column, in characters.
    pub column: u32,
}

/// A value as libxlu keeps it: numbers stay text until a key asks for a number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A string or a number, with the position of its first character.
    Atom(String, Pos),
    /// A list, with the position of its `[`.
    List(Vec<Value>, Pos),
}

impl Value {
    /// Where the value starts.
    pub fn pos(&self) -> Pos {
        match self {
            Value::Atom(_, p) | Value::List(_, p) => *p,
        }
    }
}

/// `=` or `+=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `KEY = VALUE`.
    Assign,
    /// `KEY += VALUE`.
    Add,
}

/// One `KEY = VALUE` after `+=` has been applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// The key.
    pub key: String,
    /// Where the key starts.
    pub key_pos: Pos,
    /// How it was set.
    pub op: Op,
    /// The value (for `+=`, already joined with the earlier one).
    pub value: Value,
}

/// A parsed file: its settings in file order, later ones overriding earlier ones.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Config {
    /// Every setting, in file order.
    pub settings: Vec<Setting>,
    /// The position just past the end of the file.
    pub end: Pos,
}

impl Config {
    /// The setting that counts for `key`: the last one, as libxlu's `find` returns.
    pub fn get(&self, key: &str) -> Option<&Setting> {
        self.settings.iter().rev().find(|s| s.key == key)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Ident(String),
    Number(String),
    Str(String),
    Comma,
    Open,
    Close,
    AddAssign,
    Assign,
    Semi,
    Newline,
    Eof,
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Ident(s) | Tok::Number(s) => format!("`{s}'"),
        Tok::Str(_) => "a string".to_string(),
        Tok::Comma => "`,'".to_string(),
        Tok::Open => "`['".to_string(),
        Tok::Close => "`]'".to_string(),
        Tok::AddAssign => "`+='".to_string(),
        Tok::Assign => "`='".to_string(),
        Tok::Semi => "`;'".to_string(),
        Tok::Newline => "<newline>".to_string(),
        Tok::Eof => "end of file".to_string(),
    }
}

struct Lexer<'a> {
    chars: core::iter::Peekable<core::str::Chars<'a>>,
    line: u32,
    column: u32,
}

impl Lexer<'_> {
    fn pos(&self) -> Pos {
        Pos { line: self.line, column: self.column }
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.chars.next()?;
        if c == '\n' {
            self.line += 1;
            self.column = 1;
        } else {
            self.column += 1;
        }
        Some(c)
    }

    fn peek(&mut self) -> Option<char> {
        self.chars.peek().copied()
    }

    fn lexical(&mut self, pos: Pos, first: char) -> ParseError {
        // libxlu's lexerr state swallows the rest of the word for its message.
        let mut word = String::new();
        word.push(first);
        while let Some(c) = self.peek() {
            if c == ' ' || c == '\t' || c == '\n' {
                break;
            }
            word.push(c);
            self.bump();
        }
        let python = if matches!(first, '+' | '-' | '.' | '(' | ')' | ':') {
            " (the file looks like Python, which xl no longer accepts)"
        } else {
            ""
        };
        ParseError::at(pos, format!("lexical error near `{word}'{python}"))
    }

    fn next(&mut self) -> Result<(Tok, Pos), ParseError> {
        loop {
            let pos = self.pos();
            let Some(c) = self.bump() else { return Ok((Tok::Eof, pos)) };
            let tok = match c {
                ' ' | '\t' => continue,
                '\n' => Tok::Newline,
                '#' => {
                    // `\#.*\n`: the comment must end with a newline, or `#` is a stray character.
                    let mut rest = self.chars.clone();
                    if !rest.any(|c| c == '\n') {
                        return Err(self.lexical(pos, c));
                    }
                    while self.bump() != Some('\n') {}
                    Tok::Newline
                }
                'a'..='z' => {
                    let mut s = String::from(c);
                    while let Some(n @ ('a'..='z' | '0'..='9' | '.' | '_')) = self.peek() {
                        s.push(n);
                        self.bump();
                    }
                    Tok::Ident(s)
                }
                '0'..='9' => {
                    let mut s = String::from(c);
                    while let Some(n @ ('0'..='9' | 'a'..='f' | 'x')) = self.peek() {
                        s.push(n);
                        self.bump();
                    }
                    Tok::Number(s)
                }
                ',' => Tok::Comma,
                '[' => Tok::Open,
                ']' => Tok::Close,
                ';' => Tok::Semi,
                '=' => Tok::Assign,
                '+' if self.peek() == Some('=') => {
                    self.bump();
                    Tok::AddAssign
                }
                '\'' | '"' => self.string(c, pos)?,
                other => return Err(self.lexical(pos, other)),
            };
            return Ok((tok, pos));
        }
    }

    /// A quoted string; `pos` is its opening quote.
    fn string(&mut self, quote: char, pos: Pos) -> Result<Tok, ParseError> {
        // The lexer's rule first: the string must close on this line.
        let mut look = self.chars.clone();
        let mut closed = false;
        while let Some(c) = look.next() {
            match c {
                '\n' => break,
                '\\' => {
                    if matches!(look.next(), None | Some('\n')) {
                        break;
                    }
                }
                c if c == quote => {
                    closed = true;
                    break;
                }
                _ => {}
            }
        }
        if !closed {
            return Err(self.lexical(pos, quote));
        }
        // Then libxlu's dequoting.
        let mut out = String::new();
        loop {
            let at = self.pos();
            match self.bump() {
                Some('\\') => {
                    let e = self.bump().unwrap_or('\\');
                    out.push(match e {
                        '"' | '\'' | '\\' => e,
                        'a' => '\u{7}',
                        'b' => '\u{8}',
                        'f' => '\u{c}',
                        'n' => '\n',
                        'r' => '\r',
                        't' => '\t',
                        'v' => '\u{b}',
                        'x' | '0'..='7' => {
                            return Err(ParseError::at(
                                at,
                                "numeric character escapes are not supported in quoted strings \
                                 (libxlu's never yield a character)",
                            ))
                        }
                        _ => {
                            return Err(ParseError::at(
                                at,
                                "invalid character after backlash in quoted string",
                            ))
                        }
                    });
                }
                Some(c) if c == quote => return Ok(Tok::Str(out)),
                Some(c) => out.push(c),
                None => unreachable!("closing quote checked above"),
            }
        }
    }
}

struct Parser<'a> {
    lex: Lexer<'a>,
    tok: Tok,
    pos: Pos,
}

impl Parser<'_> {
    fn advance(&mut self) -> Result<(), ParseError> {
        (self.tok, self.pos) = self.lex.next()?;
        Ok(())
    }

    fn unexpected(&self, expecting: &str) -> ParseError {
        ParseError::at(
            self.pos,
            format!("syntax error near {}: expecting {expecting}", describe(&self.tok)),
        )
    }

    fn skip_newlines(&mut self) -> Result<(), ParseError> {
        while self.tok == Tok::Newline {
            self.advance()?;
        }
        Ok(())
    }

    fn value(&mut self) -> Result<Value, ParseError> {
        let pos = self.pos;
        match core::mem::replace(&mut self.tok, Tok::Eof) {
            Tok::Str(s) | Tok::Number(s) => {
                self.advance()?;
                Ok(Value::Atom(s, pos))
            }
            Tok::Open => {
                self.advance()?;
                self.skip_newlines()?;
                let mut items = Vec::new();
                loop {
                    if self.tok == Tok::Close {
                        break;
                    }
                    items.push(self.value()?);
                    self.skip_newlines()?;
                    match self.tok {
                        Tok::Comma => {
                            self.advance()?;
                            self.skip_newlines()?;
                        }
                        Tok::Close => break,
                        _ => return Err(self.unexpected("`,' or `]'")),
                    }
                }
                self.advance()?;
                Ok(Value::List(items, pos))
            }
            other => {
                self.tok = other;
                Err(self.unexpected("a string, a number or `['"))
            }
        }
    }
}

fn join(prev: &Value, add: Value) -> Result<Value, ParseError> {
    match (prev, add) {
        (Value::Atom(a, _), Value::Atom(b, p)) => Ok(Value::Atom(format!("{a}{b}"), p)),
        (Value::List(a, _), Value::List(b, p)) => {
            let mut all = a.clone();
            all.extend(b);
            Ok(Value::List(all, p))
        }
        (_, add) => Err(ParseError::at(add.pos(), "can't add [list] to \"string\" or vice versa")),
    }
}

/// Parses an xl.cfg file's text into its settings.
pub fn parse(text: &str) -> Result<Config, ParseError> {
    let mut p = Parser {
        lex: Lexer { chars: text.chars().peekable(), line: 1, column: 1 },
        tok: Tok::Eof,
        pos: Pos { line: 1, column: 1 },
    };
    p.advance()?;
    let mut cfg = Config::default();
    loop {
        match &p.tok {
            Tok::Newline | Tok::Semi => {
                p.advance()?;
                continue;
            }
            Tok::Eof => break,
            Tok::Ident(_) => {}
            _ => return Err(p.unexpected("a key")),
        }
        let Tok::Ident(key) = core::mem::replace(&mut p.tok, Tok::Eof) else { unreachable!() };
        let key_pos = p.pos;
        p.advance()?;
        let op = match p.tok {
            Tok::Assign => Op::Assign,
            Tok::AddAssign => Op::Add,
            _ => return Err(p.unexpected("`=' or `+='")),
        };
        p.advance()?;
        let mut value = p.value()?;
        match p.tok {
            Tok::Newline | Tok::Semi | Tok::Eof => {}
            _ => return Err(p.unexpected("a newline or `;' after the value")),
        }
        if op == Op::Add {
            if let Some(prev) = cfg.get(&key) {
                value = join(&prev.value, value)?;
            }
        }
        cfg.settings.push(Setting { key, key_pos, op, value });
    }
    cfg.end = p.pos;
    Ok(cfg)
}
