//! Whether a text, as [`super::find`] reads a run of words, is an entity of a policy.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::LazyLock;

use iban::Iban;
use regex::Regex;

use super::Policy;

impl Policy {
    /// Whether `text`, a run of words as [`super::find`] reads it (in lower case, spoken digits
    /// and symbols written, words that do not join separated by a space), is as a whole an
    /// entity of this policy.
    pub(super) fn matches(self, text: &str) -> bool {
        match self {
            Policy::EmailAddress => email(text),
            Policy::PhoneNumber => phone(text),
            Policy::CreditCardNumber => card(text),
            Policy::BankingInformation => iban(text),
            Policy::UsSocialSecurityNumber => ssn(text),
            Policy::IpAddress => ip(text),
            Policy::Url => url(text),
        }
    }
}

/// Whether a text with `part` in it may be an entity of some policy: each has a digit (the
/// numbers, IBANs, IPv4 addresses), an `@` (e-mail addresses), a `.` (URLs) or a `:` (IPv6
/// addresses), and most words have none.
pub(super) fn marks_entity(part: &str) -> bool {
    part.contains(|c: char| c.is_ascii_digit() || matches!(c, '@' | '.' | ':'))
}

/// A domain name: labels separated by dots, the last (the top-level domain, `tld`) letters.
const DOMAIN: &str = r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+(?P<tld>[a-z]{2,63})";

/// Generic top-level domains common in addresses people say; with the country codes
/// ([`COUNTRY_CODES`]), what makes `example.com` a URL without a scheme or `www.`.
const GENERIC_TLDS: &str = "\
    com net org edu gov mil int info biz name pro mobi app dev page xyz online site website \
    tech store shop blog cloud email company agency studio design digital media news live life \
    world today group team solutions services network systems global academy health law bank \
    finance money";

/// The country-code top-level domains (ISO 3166 codes and `ac`, `eu`, `uk`).
const COUNTRY_CODES: &str = "\
    ac ad ae af ag ai al am ao aq ar as at au aw ax az ba bb bd be bf bg bh bi bj bm bn bo br \
    bs bt bw by bz ca cc cd cf cg ch ci ck cl cm cn co cr cu cv cw cx cy cz de dj dk dm do dz \
    ec ee eg er es et eu fi fj fk fm fo fr ga gd ge gf gg gh gi gl gm gn gp gq gr gs gt gu gw \
    gy hk hm hn hr ht hu id ie il im in io iq ir is it je jm jo jp ke kg kh ki km kn kp kr kw \
    ky kz la lb lc li lk lr ls lt lu lv ly ma mc md me mg mh mk ml mm mn mo mp mq mr ms mt mu \
    mv mw mx my mz na nc ne nf ng ni nl no np nr nu nz om pa pe pf pg ph pk pl pm pn pr ps pt \
    pw py qa re ro rs ru rw sa sb sc sd se sg sh si sk sl sm sn so sr ss st sv sx sy sz tc td \
    tf tg th tj tk tl tm tn to tr tt tv tw tz ua ug uk us uy uz va vc ve vg vi vn vu wf ws ye \
    yt za zm zw";

/// Whether `tld` is a top-level domain of [`GENERIC_TLDS`] or [`COUNTRY_CODES`].
fn known_tld(tld: &str) -> bool {
    GENERIC_TLDS
        .split_whitespace()
        .chain(COUNTRY_CODES.split_whitespace())
        .any(|known| known == tld)
}

/// `local@domain`, the domain ending in a known top-level domain.
fn email(text: &str) -> bool {
    static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(&format!(r"^[a-z0-9](?:[a-z0-9._%+-]*[a-z0-9])?@{DOMAIN}$"))
            .expect("a valid pattern")
    });
    text.contains('@')
        && EMAIL
            .captures(text)
            .is_some_and(|found| known_tld(&found["tld"]))
}

/// A host name with an optional port and path: after a scheme or `www.`, any; else one whose
/// first label is longer than a letter ("a dot in" is no address) and whose top-level domain
/// is known (`example.com`, but not `node.js` or a word that ends a sentence).
fn url(text: &str) -> bool {
    static URL: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(&format!(
            r"^(?P<prefix>(?:https?|ftp)://(?:www\.)?|www\.)?(?P<host>{DOMAIN})(?::[0-9]{{1,5}})?(?:[/?][a-z0-9._~%!$&'()*+,;=:@/?-]*)?$"
        ))
        .expect("a valid pattern")
    });
    text.contains('.')
        && URL.captures(text).is_some_and(|found| {
            found.name("prefix").is_some()
                || (found["host"]
                    .split('.')
                    .next()
                    .is_some_and(|label| label.len() > 1)
                    && known_tld(&found["tld"]))
        })
}

/// The digits of `text` and the lengths of their groups, when `text` is groups of digits
/// separated by runs of `separators`.
fn digit_groups(text: &str, separators: &[char]) -> Option<(String, Vec<usize>)> {
    let digit = |c: char| c.is_ascii_digit();
    if !text.starts_with(digit) || !text.ends_with(digit) {
        return None;
    }
    let groups: Vec<&str> = text.split(separators).filter(|g| !g.is_empty()).collect();
    groups
        .iter()
        .all(|g| g.chars().all(digit))
        .then(|| (groups.concat(), groups.iter().map(|g| g.len()).collect()))
}

/// A phone number: with `+`, 8 to 15 digits (E.164); with a trunk `0`, 10 or 11; else a North
/// American one of 7, 10, or 11 starting `1`, whose area code and exchange do not start `0`
/// or `1`, in one group or grouped as `1 555 555 5555` is.
fn phone(text: &str) -> bool {
    let (international, number) = match text.strip_prefix('+') {
        Some(number) => (true, number),
        None => (false, text),
    };
    let Some((digits, groups)) = digit_groups(number, &[' ', '-', '.', '(', ')']) else {
        return false;
    };
    if international {
        return (8..=15).contains(&digits.len());
    }
    if digits.starts_with('0') {
        return (10..=11).contains(&digits.len());
    }
    let national = match (digits.len(), digits.strip_prefix('1')) {
        (11, Some(national)) => national,
        (11, None) => return false,
        _ => &digits,
    };
    let starts_2_to_9 = |part: &str| !part.starts_with(['0', '1']);
    let numbered = match national.len() {
        7 => starts_2_to_9(national),
        10 => starts_2_to_9(national) && starts_2_to_9(&national[3..]),
        _ => false,
    };
    numbered && (groups.len() == 1 || [1, 3, 3, 4].ends_with(&groups))
}

/// A payment card number: 13 to 19 digits that pass the Luhn check, in one group or grouped as
/// cards print them, a group of 4 and then groups of 3 to 6 (`4111 1111 1111 1111`,
/// `3782 822463 10005`), not as other numbers one after another are (`000-12-3456 666-12-3456`).
fn card(text: &str) -> bool {
    digit_groups(text, &[' ', '-']).is_some_and(|(digits, groups)| {
        let printed = groups[0] == 4 && groups[1..].iter().all(|g| (3..=6).contains(g));
        (13..=19).contains(&digits.len()) && (groups.len() == 1 || printed) && luhn(&digits)
    })
}

/// Whether `digits` pass the Luhn check: every second digit from the right doubled (less 9
/// when over 9), the sum a multiple of 10.
fn luhn(digits: &str) -> bool {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            match i % 2 {
                0 => d,
                _ if d < 5 => 2 * d,
                _ => 2 * d - 9,
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// An IBAN, in groups or not: its country's length and format and its check digits.
fn iban(text: &str) -> bool {
    text.len() >= 15
        && text.starts_with(|c: char| c.is_ascii_alphabetic())
        && text
            .split(' ')
            .collect::<String>()
            .to_ascii_uppercase()
            .parse::<Iban>()
            .is_ok()
}

/// A US social security number: `AAA-GG-SSSS` (or in one group), the area not 000, 666 or
/// 9xx, the group not 00, the serial not 0000.
fn ssn(text: &str) -> bool {
    digit_groups(text, &[' ', '-']).is_some_and(|(digits, groups)| {
        (groups == [9] || groups == [3, 2, 4]) && {
            let (area, group, serial) = (&digits[..3], &digits[3..5], &digits[5..]);
            !matches!(area, "000" | "666")
                && !area.starts_with('9')
                && group != "00"
                && serial != "0000"
        }
    })
}

/// An IPv4 or IPv6 address, as the standard library reads them.
fn ip(text: &str) -> bool {
    text.parse::<Ipv4Addr>().is_ok() || (text.contains(':') && text.parse::<Ipv6Addr>().is_ok())
}
