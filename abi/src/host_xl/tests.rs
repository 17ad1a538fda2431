use super::*;

fn requests(reader: &mut RequestReader, bytes: &[u8]) -> Vec<(Vec<u8>, Option<usize>, u32)> {
    let mut found = Vec::new();
    for &byte in bytes {
        match reader.push(byte) {
            Some(Request::Line { text, id }) => found.push((text.to_vec(), None, id)),
            Some(Request::TooLong { length, id }) => found.push((Vec::new(), Some(length), id)),
            None => {}
        }
    }
    found
}

#[test]
fn lines_split_at_newlines_with_a_carriage_return_dropped() {
    let mut reader = RequestReader::new();
    let found = requests(&mut reader, b"list\ncreate linux3.cfg\r\n\npartial");
    assert_eq!(
        found,
        vec![
            (b"list".to_vec(), None, request_id(b"list")),
            (b"create linux3.cfg".to_vec(), None, request_id(b"create linux3.cfg\r")),
            (Vec::new(), None, request_id(b"")),
        ]
    );
    // The partial line goes on with the next bytes.
    let found = requests(&mut reader, b" more\n");
    assert_eq!(found, vec![(b"partial more".to_vec(), None, request_id(b"partial more"))]);
}

#[test]
fn a_request_over_the_limit_is_reported_with_its_length_and_id_and_the_next_one_is_whole() {
    let mut reader = RequestReader::new();
    let mut long = vec![b'x'; MAX_REQUEST + 1000];
    let id = request_id(&long);
    long.extend_from_slice(b"\nlist\n");
    let found = requests(&mut reader, &long);
    assert_eq!(
        found,
        vec![
            (Vec::new(), Some(MAX_REQUEST + 1000), id),
            (b"list".to_vec(), None, request_id(b"list"))
        ]
    );
    // Exactly the limit is still a request.
    let mut exact = vec![b'y'; MAX_REQUEST];
    exact.push(b'\n');
    let found = requests(&mut reader, &exact);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].0.len(), MAX_REQUEST);
}

#[test]
fn request_id_is_the_crc32_of_the_line() {
    assert_eq!(request_id(b"123456789"), 0xCBF4_3926);
}

#[test]
fn trailers_encode_and_parse_back() {
    for status in [0u8, 1, 2, 9, 10, 99, 100, 255] {
        for id in [0u32, 1, 0xdead_beef, u32::MAX] {
            let (bytes, length) = Trailer { status, id }.encode();
            let bytes = &bytes[..length];
            assert_eq!(bytes[0], TERMINATOR);
            assert_eq!(bytes[length - 1], b'\n');
            assert_eq!(
                core::str::from_utf8(&bytes[1..length - 1]).unwrap(),
                format!("{status} {id:08x}")
            );
            let mut reader = AnswerReader::default();
            let steps: Vec<Step> = bytes.iter().map(|&byte| reader.push(byte)).collect();
            assert_eq!(steps.last(), Some(&Step::Done(Trailer { status, id })));
        }
    }
    assert_eq!(Trailer { status: 255, id: 0 }.encode().1, MAX_TRAILER);
}

#[test]
fn an_answer_is_its_text_then_its_trailer_and_the_reader_starts_over() {
    let mut reader = AnswerReader::default();
    let mut answer = b"Name  ID\nDomain-0  0\n".to_vec();
    let (trailer, length) = Trailer { status: 0, id: 7 }.encode();
    answer.extend_from_slice(&trailer[..length]);
    answer.extend_from_slice(b"next");
    let mut text = Vec::new();
    let mut done = Vec::new();
    for &byte in &answer {
        match reader.push(byte) {
            Step::Text(byte) => text.push(byte),
            Step::Done(trailer) => {
                done.push((String::from_utf8(text.clone()).unwrap(), trailer));
                text.clear();
            }
            Step::Trailer => {}
            Step::Malformed => panic!("malformed"),
        }
    }
    assert_eq!(done, vec![("Name  ID\nDomain-0  0\n".into(), Trailer { status: 0, id: 7 })]);
    assert_eq!(text, b"next");
}

#[test]
fn malformed_trailers_are_reported_never_a_panic() {
    for bad in [
        &b"\0\n"[..],
        b"\0x 00000000\n",
        b"\x00256 00000000\n",
        b"\x000 0000000\n",
        b"\x000 000000000\n",
        b"\x000 0000000g\n",
        b"\x000\n",
        b"\0 00000000\n",
        b"\x001 00000000 and more bytes than any trailer\n",
        b"\0\xff\xfe 00000000\n",
    ] {
        let mut reader = AnswerReader::default();
        let steps: Vec<Step> = bad.iter().map(|&byte| reader.push(byte)).collect();
        assert!(steps.contains(&Step::Malformed), "{bad:?}: {steps:?}");
    }
}

#[test]
fn text_never_holds_the_terminator() {
    assert_eq!(text_byte(TERMINATOR), b'?');
    assert_eq!(text_byte(b'a'), b'a');
    assert_eq!(text_byte(b'\n'), b'\n');
}
