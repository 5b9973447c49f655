use serde_json::json;

use super::*;

/// A transcript of `segments`, as the worker stores one: a word every half second, each
/// segment's text its words joined by spaces, the text the segments' joined by spaces. Built
/// through JSON, so that optional fields added to the transcript's types need no change here.
fn transcript(segments: &[&str]) -> Transcript {
    let (mut words, mut stored, mut at) = (Vec::new(), Vec::new(), 0.0);
    for text in segments {
        let start = at;
        for word in text.split_whitespace() {
            words.push(json!({ "word": word, "start": at, "end": at + 0.4 }));
            at += 0.5;
        }
        stored.push(json!({ "text": text, "start": start, "end": at - 0.1 }));
    }
    serde_json::from_value(json!({
        "text": segments.join(" "),
        "duration": at,
        "segments": stored,
        "words": words,
    }))
    .expect("a transcript")
}

fn options(policies: &[Policy], substitution: Substitution) -> Options {
    Options {
        policies: policies.to_vec(),
        substitution,
    }
}

/// Redacts `text` (one segment) of all policies, with entity names.
fn redacted(text: &str) -> Redacted {
    redact(&transcript(&[text]), &Options::default())
}

/// Each policy's entities, written and spoken, in a sentence: the sentence and what redacting
/// it of all policies with entity names makes of it.
const FOUND: &[(Policy, &str, &str)] = &[
    (
        Policy::EmailAddress,
        "write to john.smith@example.com.",
        "write to [EMAIL_ADDRESS].",
    ),
    (
        Policy::EmailAddress,
        "it is john dot smith at example dot com, thanks",
        "it is [EMAIL_ADDRESS], thanks",
    ),
    (
        Policy::EmailAddress,
        "my email is j o h n at gmail dot com",
        "my email is [EMAIL_ADDRESS]",
    ),
    (
        Policy::EmailAddress,
        "send it to b i double l underscore seven at example dot co dot uk",
        "send it to [EMAIL_ADDRESS]",
    ),
    (
        Policy::EmailAddress,
        "Email (Jane.Doe@Example.org).",
        "Email [EMAIL_ADDRESS].",
    ),
    (
        Policy::EmailAddress,
        "reach me at jane dash doe at example dot com",
        "reach me at [EMAIL_ADDRESS]",
    ),
    (
        Policy::PhoneNumber,
        "call 555-0134 today",
        "call [PHONE_NUMBER] today",
    ),
    (
        Policy::PhoneNumber,
        "It's five five five, oh one three four.",
        "It's [PHONE_NUMBER].",
    ),
    (
        Policy::PhoneNumber,
        "it's double five five oh one three four",
        "it's [PHONE_NUMBER]",
    ),
    (
        Policy::PhoneNumber,
        "call (415) 555-0134 now",
        "call [PHONE_NUMBER] now",
    ),
    (
        Policy::PhoneNumber,
        "area code 415, 555 0134",
        "area code [PHONE_NUMBER]",
    ),
    (
        Policy::PhoneNumber,
        "dial 1-800-555-0134",
        "dial [PHONE_NUMBER]",
    ),
    (
        Policy::PhoneNumber,
        "ring +44 20 7946 0958.",
        "ring [PHONE_NUMBER].",
    ),
    (
        Policy::PhoneNumber,
        "plus four four two zero seven nine four six zero nine five eight",
        "[PHONE_NUMBER]",
    ),
    (
        Policy::PhoneNumber,
        "the number is 020 7946 0958",
        "the number is [PHONE_NUMBER]",
    ),
    (
        Policy::CreditCardNumber,
        "card 4111 1111 1111 1111, expiry",
        "card [CREDIT_CARD_NUMBER], expiry",
    ),
    (
        Policy::CreditCardNumber,
        "it's 4111-1111-1111-1111",
        "it's [CREDIT_CARD_NUMBER]",
    ),
    (
        Policy::CreditCardNumber,
        "four one one one one one one one one one one one one one one one",
        "[CREDIT_CARD_NUMBER]",
    ),
    (
        Policy::CreditCardNumber,
        "four triple one one one one one one one one one one one one one",
        "[CREDIT_CARD_NUMBER]",
    ),
    (
        Policy::CreditCardNumber,
        "amex 3782 822463 10005 please",
        "amex [CREDIT_CARD_NUMBER] please",
    ),
    (
        Policy::BankingInformation,
        "IBAN GB82 WEST 1234 5698 7654 32.",
        "IBAN [BANKING_INFORMATION].",
    ),
    (
        Policy::BankingInformation,
        "to DE89370400440532013000 today",
        "to [BANKING_INFORMATION] today",
    ),
    (
        Policy::BankingInformation,
        "g b eight two w e s t one two three four five six nine eight seven six five four three two",
        "[BANKING_INFORMATION]",
    ),
    (
        Policy::UsSocialSecurityNumber,
        "my social is 536-22-1234.",
        "my social is [US_SOCIAL_SECURITY_NUMBER].",
    ),
    (
        Policy::UsSocialSecurityNumber,
        "it's 536 22 1234",
        "it's [US_SOCIAL_SECURITY_NUMBER]",
    ),
    (
        Policy::UsSocialSecurityNumber,
        "five three six two two one two three four",
        "[US_SOCIAL_SECURITY_NUMBER]",
    ),
    (
        Policy::IpAddress,
        "the server is 192.168.0.1.",
        "the server is [IP_ADDRESS].",
    ),
    (
        Policy::IpAddress,
        "one nine two dot one six eight dot zero dot one",
        "[IP_ADDRESS]",
    ),
    (
        Policy::IpAddress,
        "address 2001:db8::1 is down",
        "address [IP_ADDRESS] is down",
    ),
    (
        Policy::IpAddress,
        "two zero zero one colon d b eight colon colon one",
        "[IP_ADDRESS]",
    ),
    (
        Policy::Url,
        "go to https://example.com/pricing?plan=pro now",
        "go to [URL] now",
    ),
    (Policy::Url, "visit www.example.org.", "visit [URL]."),
    (Policy::Url, "see example dot com slash docs", "see [URL]"),
    (
        Policy::Url,
        "docs are on nodejs.org today",
        "docs are on [URL] today",
    ),
    (
        Policy::Url,
        "I work at example dot com.",
        "I work at [URL].",
    ),
    (
        Policy::Url,
        "h t t p s colon slash slash w w w dot example dot com",
        "[URL]",
    ),
];

/// Sentences with numbers, dots and at signs but nothing to redact.
const NOT_FOUND: &[&str] = &[
    "In 1990, twenty five people came.",
    "Prices went from $4,111 to $5,000 between 1990-1995.",
    "From 1990 to 1995 and 2001 to 2010.",
    "See page 4111 for one or two examples.",
    "The number 4111 1111 1111 1112 fails the check.",
    "It costs 1,234,567 dollars or 3.5 million.",
    "Count one two three, then call 123-4567.",
    "Not 000-12-3456, 666-12-3456, 912-34-5678, 123-00-4567 or 123-45-0000.",
    "IBAN GB82 WEST 1234 5698 7654 33 is wrong.",
    "Version 1.2.3 and 256.1.1.1 at 10:30.",
    "The end. That's it.",
    "Node.js is fine, e.g. for U.S. data.",
    "We met at noon and ate at home.",
    "The dot com bubble burst.",
    "There is a dot in the middle.",
    "Double check file.txt and the 2nd item.",
];

fn text(redacted: &Redacted) -> &str {
    &redacted.transcript.text
}

#[test]
fn each_policy_finds_its_entities_written_and_spoken() {
    for &(policy, sentence, expected) in FOUND {
        let all = redacted(sentence);
        assert_eq!(text(&all), expected, "{sentence:?}");
        assert!(
            all.spans.iter().all(|span| span.policy == policy),
            "{sentence:?}: {:?}",
            all.spans
        );
        assert_eq!(all.spans.len(), 1, "{sentence:?}");
        let only = redact(
            &transcript(&[sentence]),
            &options(&[policy], Substitution::EntityName),
        );
        assert_eq!(text(&only), expected, "{sentence:?} of {policy:?} alone");
    }
}

#[test]
fn numbers_addresses_and_words_that_are_no_entity_are_left_alone() {
    for sentence in NOT_FOUND {
        let all = redacted(sentence);
        assert_eq!(all.spans, [], "{sentence:?}");
        assert_eq!(all.transcript, transcript(&[sentence]));
    }
}

#[test]
fn a_transcript_without_pii_is_unchanged_byte_for_byte() {
    let mut clean = transcript(NOT_FOUND);
    // Even what the worker would not store: a text that is not the segments' joined.
    clean.text = format!("  {}  ", clean.text);
    let json = serde_json::to_string(&clean).unwrap();
    for substitution in [Substitution::EntityName, Substitution::Hash] {
        let result = redact(&clean, &options(&[], substitution));
        assert_eq!(serde_json::to_string(&result.transcript).unwrap(), json);
    }
}

#[test]
fn only_the_policies_asked_for_are_redacted() {
    let sentence = "mail john at example dot com or call 555-0134";
    let phone = redact(
        &transcript(&[sentence]),
        &options(&[Policy::PhoneNumber], Substitution::EntityName),
    );
    assert_eq!(
        text(&phone),
        "mail john at example dot com or call [PHONE_NUMBER]"
    );
    let none = redact(
        &transcript(&[sentence]),
        &options(&[Policy::IpAddress], Substitution::EntityName),
    );
    assert_eq!(none.spans, []);
}

#[test]
fn hashes_replace_each_character_and_keep_the_sentence_end() {
    let hashed = |sentence: &str| {
        let result = redact(&transcript(&[sentence]), &options(&[], Substitution::Hash));
        result.transcript.text
    };
    assert_eq!(hashed("call 555-0134."), "call ########.");
    assert_eq!(
        hashed("it's five five five, oh one three four!"),
        format!(
            "it's {}!",
            "#".repeat("five five five, oh one three four".len())
        )
    );
    for &(_, sentence, _) in FOUND {
        assert_eq!(
            hashed(sentence).chars().count(),
            sentence.chars().count(),
            "{sentence:?}"
        );
    }
}

#[test]
fn an_entity_becomes_one_word_spanning_its_words() {
    let original = transcript(&["call five five five, oh one three four. Thanks"]);
    let result = redact(&original, &Options::default());
    let words = &result.transcript.words;
    assert_eq!(
        words.iter().map(|w| w.word.as_str()).collect::<Vec<_>>(),
        ["call", "[PHONE_NUMBER].", "Thanks"]
    );
    let phone = &original.words[1..8];
    assert_eq!(
        (words[1].start, words[1].end),
        (phone[0].start, phone[6].end)
    );
    assert_eq!(words[2], original.words[8]);
    assert_eq!(
        result.spans,
        [Redaction {
            policy: Policy::PhoneNumber,
            start: phone[0].start,
            end: phone[6].end,
        }]
    );
}

#[test]
fn the_merged_word_keeps_the_first_words_other_fields() {
    let mut original = transcript(&["call 555 0134 now"]);
    for (word, speaker) in original.words.iter_mut().zip(["A", "B", "C", "D"]) {
        word.speaker = Some(speaker.into());
    }
    let result = redact(&original, &Options::default());
    let speakers: Vec<_> = result
        .transcript
        .words
        .iter()
        .map(|w| w.speaker.as_deref())
        .collect();
    assert_eq!(speakers, [Some("A"), Some("B"), Some("D")]);
}

#[test]
fn segments_and_text_are_rebuilt_from_the_words() {
    let original = transcript(&[
        "My number is five five five",
        "oh one three four.",
        "Mail john dot smith at example dot com or 555-0134, thanks.",
        "",
        "Bye.",
    ]);
    let result = redact(&original, &Options::default());
    let redacted = &result.transcript;
    let segments: Vec<&str> = redacted.segments.iter().map(|s| s.text.as_str()).collect();
    // An entity never crosses a segment: the number read across two is two numbers.
    assert_eq!(
        segments,
        [
            "My number is five five five",
            "oh one three four.",
            "Mail [EMAIL_ADDRESS] or [PHONE_NUMBER], thanks.",
            "",
            "Bye.",
        ]
    );
    assert_eq!(redacted.text, segments.join(" "));
    let sentences = redacted.sentences();
    assert_eq!(sentences.len(), 4);
    for (words, segment) in sentences
        .iter()
        .zip(redacted.segments.iter().filter(|s| !s.text.is_empty()))
    {
        assert_eq!(crate::transcript::join(words), segment.text);
    }
    let times = |t: &Transcript| -> Vec<(f64, f64)> {
        t.segments.iter().map(|s| (s.start, s.end)).collect()
    };
    assert_eq!(times(redacted), times(&original));
    assert_eq!(redacted.duration, original.duration);
}

#[test]
fn words_past_the_last_segment_are_redacted_too() {
    let mut original = transcript(&["hello", "call 555-0134"]);
    original.segments.pop();
    let result = redact(&original, &Options::default());
    assert_eq!(result.transcript.text, "hello call [PHONE_NUMBER]");
    assert_eq!(result.transcript.words.len(), 3);
    assert_eq!(result.transcript.segments, original.segments);
}

/// A segment of an hour's speech without sentence ends is searched from each word over a few
/// words only, not over the rest of the segment.
#[test]
fn a_long_segment_is_searched_in_linear_time() {
    let filler = "so we went on and talked about the plan for a while and then";
    let speech = [filler; 800].join(" ");
    let long = format!("{speech} call five five five oh one three four {speech}");
    let started = std::time::Instant::now();
    let result = redacted(&long);
    assert_eq!(result.spans.len(), 1);
    assert!(started.elapsed().as_secs() < 5, "{:?}", started.elapsed());
}

#[test]
fn redacting_twice_is_redacting_once() {
    let sentences: Vec<&str> = FOUND.iter().map(|&(_, sentence, _)| sentence).collect();
    let original = transcript(&sentences);
    for substitution in [Substitution::EntityName, Substitution::Hash] {
        let options = options(&[], substitution);
        let once = redact(&original, &options);
        assert_eq!(once.spans.len(), FOUND.len());
        let twice = redact(&once.transcript, &options);
        assert_eq!(twice.transcript, once.transcript, "{substitution:?}");
        assert_eq!(twice.spans, []);
    }
}

#[test]
fn policies_parse_by_assemblyai_name() {
    for policy in Policy::ALL {
        assert_eq!(policy.name().parse(), Ok(policy));
        assert_eq!(
            serde_json::to_string(&policy).unwrap(),
            format!("\"{}\"", policy.name())
        );
    }
    let parsed: Vec<Policy> =
        serde_json::from_str(r#"["email_address", "us_social_security_number"]"#).unwrap();
    assert_eq!(
        parsed,
        [Policy::EmailAddress, Policy::UsSocialSecurityNumber]
    );
    let unknown = "person_name".parse::<Policy>().unwrap_err();
    assert_eq!(unknown, UnknownPolicy("person_name".into()));
    assert!(
        unknown.to_string().contains("banking_information"),
        "{unknown}"
    );
    assert!(serde_json::from_str::<Policy>(r#""person_name""#).is_err());
    assert_eq!(
        serde_json::from_str::<Substitution>(r#""hash""#).unwrap(),
        Substitution::Hash
    );
    assert_eq!(
        Policy::UsSocialSecurityNumber.entity_name(),
        "[US_SOCIAL_SECURITY_NUMBER]"
    );
}

/// From a new user's trial: nine of fifteen spoken ones read as a social security number and
/// the other six stayed in the clear. An entity takes the run of digits it sits in.
#[test]
fn an_entity_inside_a_longer_run_of_digits_takes_the_whole_run() {
    let ones = vec!["one"; 15].join(" ");
    let all = redacted(&format!("four who {ones} want."));
    assert_eq!(text(&all), "four who [US_SOCIAL_SECURITY_NUMBER] want.");
    let written = redacted("ref 12 212 555 0134 99 ok");
    assert_eq!(text(&written), "ref [PHONE_NUMBER] ok");
}
