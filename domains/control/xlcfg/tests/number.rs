//! C's `strtol` as xl applies it (`xlu_cfg_get_bounded_long` in `tools/libs/util/libxlu_cfg.c`).

use xenolith_xlcfg::number::{strtol, NumError};

#[test]
fn base_zero_picks_the_base_from_the_prefix() {
    assert_eq!(strtol("42", 0), Ok(42));
    assert_eq!(strtol("0x2a", 0), Ok(42));
    assert_eq!(strtol("0X2A", 0), Ok(42));
    assert_eq!(strtol("052", 0), Ok(42));
    assert_eq!(strtol("0", 0), Ok(0));
    assert_eq!(strtol(" \t-7", 0), Ok(-7));
    assert_eq!(strtol("+7", 0), Ok(7));
}

#[test]
fn the_whole_text_must_be_used() {
    for bad in ["", "0x", "08", "12abc", "1 ", "-", "0xg"] {
        assert_eq!(strtol(bad, 0), Err(NumError::Invalid), "{bad:?}");
    }
    assert_eq!(strtol("0x21", 10), Err(NumError::Invalid));
}

#[test]
fn range_is_that_of_long() {
    assert_eq!(strtol("9223372036854775807", 0), Ok(i64::MAX));
    assert_eq!(strtol("-9223372036854775808", 0), Ok(i64::MIN));
    assert_eq!(strtol("9223372036854775808", 0), Err(NumError::Range));
    assert_eq!(strtol("99999999999999999999999", 0), Err(NumError::Range));
}

#[test]
fn base_sixteen_takes_an_optional_prefix() {
    assert_eq!(strtol("ff", 16), Ok(255));
    assert_eq!(strtol("0xff", 16), Ok(255));
}
