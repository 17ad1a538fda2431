//! libxlu's syntax: every element, and every error with its line and column.

use xenolith_xlcfg::{parse, Op, ParseError, Pos, Value};

fn atom(cfg: &xenolith_xlcfg::Config, key: &str) -> String {
    match &cfg.get(key).expect(key).value {
        Value::Atom(s, _) => s.clone(),
        v => panic!("{key} is {v:?}"),
    }
}

fn atoms(v: &Value) -> Vec<String> {
    match v {
        Value::List(items, _) => items
            .iter()
            .map(|i| match i {
                Value::Atom(s, _) => s.clone(),
                Value::List(..) => "<list>".into(),
            })
            .collect(),
        Value::Atom(..) => panic!("not a list"),
    }
}

fn fails(text: &str) -> ParseError {
    parse(text).expect_err(text)
}

fn at(text: &str, line: u32, column: u32, message_part: &str) {
    let e = fails(text);
    assert_eq!((e.line, e.column), (line, column), "{text:?}: {e}");
    assert!(e.message.contains(message_part), "{text:?}: {e}");
}

#[test]
fn settings_newlines_semicolons_and_comments() {
    let cfg =
        parse("# leading comment\nname = \"a\"; memory=512 # trailing\n\n;;\nvcpus = 2").unwrap();
    assert_eq!(atom(&cfg, "name"), "a");
    assert_eq!(atom(&cfg, "memory"), "512");
    assert_eq!(atom(&cfg, "vcpus"), "2");
    let m = cfg.get("memory").unwrap();
    assert_eq!(m.key_pos, Pos { line: 2, column: 13 });
    assert_eq!(m.value.pos(), Pos { line: 2, column: 20 });
    assert_eq!(cfg.settings.len(), 3);
}

#[test]
fn keys_allow_dots_digits_underscores() {
    let cfg = parse("a.b_c9 = 1\n").unwrap();
    assert_eq!(atom(&cfg, "a.b_c9"), "1");
}

#[test]
fn strings_single_double_and_escapes() {
    let cfg = parse(
        r#"a = 'it''s'
b = "q\"\'\\\a\b\f\n\r\t\v"
c = 'say "hi"'
d = ""
"#,
    );
    // `'it''s'` is two strings in a row: a syntax error, not concatenation.
    let e = cfg.unwrap_err();
    assert_eq!((e.line, e.column), (1, 9), "{e}");
    let cfg =
        parse("b = \"q\\\"\\'\\\\\\a\\b\\f\\n\\r\\t\\v\"\nc = 'say \"hi\"'\nd = \"\"\n").unwrap();
    assert_eq!(atom(&cfg, "b"), "q\"'\\\u{7}\u{8}\u{c}\n\r\t\u{b}");
    assert_eq!(atom(&cfg, "c"), "say \"hi\"");
    assert_eq!(atom(&cfg, "d"), "");
}

#[test]
fn numbers_are_kept_as_text() {
    let cfg = parse("a = 0x1f\nb = 017\nc = 42\n").unwrap();
    assert_eq!(atom(&cfg, "a"), "0x1f");
    assert_eq!(atom(&cfg, "b"), "017");
    assert_eq!(atom(&cfg, "c"), "42");
}

#[test]
fn lists_nested_empty_trailing_comma_and_newlines() {
    let cfg = parse(
        "l = [ 'a', 1,\n  'b',\n]\ne = []\nn = [ [ 'x' ], 'y' ]\nm = [\n\n 'p'\n\n ,\n 'q' ]\n",
    )
    .unwrap();
    assert_eq!(atoms(&cfg.get("l").unwrap().value), ["a", "1", "b"]);
    assert_eq!(atoms(&cfg.get("e").unwrap().value), Vec::<String>::new());
    assert_eq!(atoms(&cfg.get("n").unwrap().value), ["<list>", "y"]);
    assert_eq!(atoms(&cfg.get("m").unwrap().value), ["p", "q"]);
}

#[test]
fn later_settings_win_and_plus_equals_joins() {
    let cfg =
        parse("a = 'x'\na = 'y'\ns = 'ab'\ns += 'cd'\nl = [1]\nl += [2, 3]\nn += 'new'\n").unwrap();
    assert_eq!(atom(&cfg, "a"), "y");
    assert_eq!(atom(&cfg, "s"), "abcd");
    assert_eq!(cfg.get("s").unwrap().op, Op::Add);
    assert_eq!(atoms(&cfg.get("l").unwrap().value), ["1", "2", "3"]);
    assert_eq!(atom(&cfg, "n"), "new");
}

#[test]
fn display_names_line_and_column() {
    let e = fails("name = 'a'\nmemory = ?\n");
    assert_eq!(e.to_string(), "config:2:10: lexical error near `?'");
}

#[test]
fn lexical_errors() {
    at("a = 1\nName = 'x'\n", 2, 1, "lexical error near `Name'");
    at("a = 0x1F\n", 1, 8, "lexical error near `F'");
    at("a = 'open\n", 1, 5, "lexical error");
    at("a = \"x\\\n\"\n", 1, 5, "lexical error");
    at("a = 1\r\n", 1, 6, "lexical error");
    at("a = 1 # no newline at the end", 1, 7, "lexical error near `#'");
    at("kernel = /boot/vmlinuz\n", 1, 10, "lexical error near `/boot/vmlinuz'");
    at("a = (1)\n", 1, 5, "looks like Python");
    at("a = -1\n", 1, 5, "looks like Python");
    at("a = 1 + 2\n", 1, 7, "looks like Python");
    at("a =\t(1)\n", 1, 5, "looks like Python");
}

#[test]
fn escape_errors() {
    at("a = 'ok'\nb = 'x\\qy'\n", 2, 7, "invalid character after backlash in quoted string");
    at("b = \"\\x41\"\n", 1, 6, "numeric character escapes");
    at("b = \"ab\\101\"\n", 1, 8, "numeric character escapes");
}

#[test]
fn syntax_errors() {
    at("= 1\n", 1, 1, "syntax error near `=': expecting a key");
    at("a 1\n", 1, 3, "expecting `=' or `+='");
    at("a =\nb = 1\n", 1, 4, "syntax error near <newline>");
    at("a = 1 2\n", 1, 7, "expecting a newline or `;'");
    at("a = [1 2]\n", 1, 8, "expecting `,' or `]'");
    at("a = [1,,2]\n", 1, 8, "near `,': expecting a string, a number or `['");
    at("a = [,]\n", 1, 6, "near `,': expecting a string");
    at("a = [1, 2,\n", 2, 1, "end of file");
    at("a = [1\n\n", 3, 1, "end of file");
    at("a = ]\n", 1, 5, "near `]': expecting a string, a number or `['");
    at("a = 1\n]\n", 2, 1, "expecting a key");
    at("a = 'x'\na += [1]\n", 2, 6, "can't add [list] to \"string\" or vice versa");
    at("a = [1]\na += 'x'\n", 2, 6, "can't add [list]");
}

#[test]
fn columns_count_characters_not_bytes() {
    at("a = 'é' ?\n", 1, 9, "lexical error");
}
