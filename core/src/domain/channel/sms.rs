//! The SMS channel's rules: which changes are texted, how many one alert can cause, and a text
//! that fits one GSM-7 segment (a third of the cost and throughput of the three UCS-2 segments a
//! Spanish text with accents takes).

use super::super::alert::{AlertEvent, MAX_ESCALATION_LEVEL};
use super::gsm7::{self, Encoding};

/// Whether the family gets this change by SMS. Location updates go by e-mail only: a text per
/// update floods a frightened family's phone and multiplies the SMS bill.
pub fn texts(event: AlertEvent) -> bool {
    !matches!(event, AlertEvent::LocationUpdated)
}

/// The most family-texted changes one alert can have: opened, duress signalled (once), duress-
/// cancelled, every escalation level, acknowledged, and resolved or cancelled. Each is one SMS per
/// contact with a phone.
pub const MAX_TEXTS_PER_ALERT: usize = 5 + MAX_ESCALATION_LEVEL as usize;

pub fn fits_one_segment(text: &str) -> bool {
    Encoding::of(text) == Encoding::Gsm7 && gsm7::segments(text) == 1
}

/// Renders `render(parts)` in GSM-7 within one segment. When it is too long the parts are cut, the
/// first as far as needed before the second is touched (the note, then the name): what `render`
/// adds itself (the map link, the phones) is never cut. Returns the longest text that fits, or
/// the text with every part emptied if even that does not.
pub fn fit(parts: &[&str], render: impl Fn(&[String]) -> String) -> String {
    let mut parts: Vec<String> = parts.iter().map(|p| gsm7::transliterate(p)).collect();
    let rendered = |parts: &[String]| gsm7::transliterate(&render(parts));
    for i in 0..parts.len() {
        if fits_one_segment(&rendered(&parts)) {
            break;
        }
        let chars: Vec<char> = parts[i].chars().collect();
        let cut = |n: usize| chars[..n].iter().collect::<String>().trim_end().to_owned();
        // The longest prefix that fits; none may, and then the next part is cut too.
        let (mut fitting, mut too_long) = (0, chars.len());
        while fitting + 1 < too_long {
            let middle = (fitting + too_long) / 2;
            parts[i] = cut(middle);
            if fits_one_segment(&rendered(&parts)) {
                fitting = middle;
            } else {
                too_long = middle;
            }
        }
        parts[i] = cut(fitting);
    }
    rendered(&parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_part_is_cut_and_the_rest_kept() {
        let link = "https://maps.google.com/?q=41.88000,-87.63000";
        let render = |parts: &[String]| format!("ALERTA de {}: Ubicación: {link}", parts[0]);
        // (name, what the text starts with)
        for (name, start) in [
            ("Ana", "ALERTA de Ana: "),
            ("María José", "ALERTA de Maria José: "),
            (&"Guadalupe ".repeat(20), "ALERTA de Guadalupe Guadalupe"),
        ] {
            let text = fit(&[name], render);
            assert!(fits_one_segment(&text), "{text}");
            assert!(text.starts_with(start), "{text}");
            assert!(text.ends_with(link), "{text}");
        }
        let longest = fit(&[&"x".repeat(200)], render);
        assert_eq!(longest.chars().count(), 160, "{longest}");
    }

    #[test]
    fn the_first_part_is_cut_before_the_second() {
        let render = |parts: &[String]| format!("{} / {}", parts[0], parts[1]);
        let text = fit(&[&"n".repeat(150), &"a".repeat(50)], render);
        assert_eq!(text, format!("{} / {}", "n".repeat(107), "a".repeat(50)));
    }

    #[test]
    fn location_updates_are_not_texted_and_the_rest_are() {
        for event in AlertEvent::texted() {
            assert!(texts(event), "{event:?}");
        }
        assert!(!texts(AlertEvent::LocationUpdated));
    }
}
