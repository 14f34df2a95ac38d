//! How an SMS is encoded and what it costs. A text of GSM-7 characters (GSM 03.38's basic set and
//! its extension table) fits 160 septets in one segment and 153 per segment once split; any other
//! character turns the whole text into UCS-2: 70 characters, or 67 per segment. Carriers bill and
//! throttle per segment, so the family's texts are written in GSM-7 and fit one.

/// The basic character set, one septet each.
const BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
                     ¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";

/// The extension table: an escape septet and one more each.
const EXTENSION: &str = "\u{c}^{}\\[~]|€";

pub const SINGLE_GSM7: usize = 160;
pub const PART_GSM7: usize = 153;
pub const SINGLE_UCS2: usize = 70;
pub const PART_UCS2: usize = 67;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Gsm7,
    Ucs2,
}

impl Encoding {
    pub fn of(text: &str) -> Encoding {
        if text.chars().all(is_gsm7) {
            Encoding::Gsm7
        } else {
            Encoding::Ucs2
        }
    }
}

pub fn is_gsm7(c: char) -> bool {
    BASIC.contains(c) || EXTENSION.contains(c)
}

/// Septets in GSM-7, or UTF-16 code units in UCS-2: what the segment limits count.
fn units(c: char, encoding: Encoding) -> usize {
    match encoding {
        Encoding::Gsm7 if EXTENSION.contains(c) => 2,
        Encoding::Gsm7 => 1,
        Encoding::Ucs2 => c.len_utf16(),
    }
}

/// How many segments `text` is sent as. A character never straddles two segments, so an escaped
/// GSM-7 character or a UTF-16 surrogate pair can leave a part one unit short.
pub fn segments(text: &str) -> usize {
    let encoding = Encoding::of(text);
    let (single, part) = match encoding {
        Encoding::Gsm7 => (SINGLE_GSM7, PART_GSM7),
        Encoding::Ucs2 => (SINGLE_UCS2, PART_UCS2),
    };
    let total: usize = text.chars().map(|c| units(c, encoding)).sum();
    if total <= single {
        return 1;
    }
    let (mut count, mut used) = (1, 0);
    for c in text.chars() {
        let n = units(c, encoding);
        if used + n > part {
            count += 1;
            used = 0;
        }
        used += n;
    }
    count
}

/// `text` in GSM-7 only: accented letters GSM-7 lacks lose their accent (`á` → `a`; `é`, `ñ`, `¿`
/// and `¡` are kept), typographic punctuation becomes plain, and anything else becomes `?`.
pub fn transliterate(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if is_gsm7(c) {
            out.push(c);
            continue;
        }
        let plain = match c {
            'á' | 'â' | 'ã' | 'ā' | 'ą' => "a",
            'Á' | 'À' | 'Â' | 'Ã' | 'Ā' | 'Ą' => "A",
            'ç' | 'ć' | 'č' => "c",
            'Ć' | 'Č' => "C",
            'ê' | 'ë' | 'ē' | 'ę' | 'ě' => "e",
            'È' | 'Ê' | 'Ë' | 'Ē' | 'Ę' | 'Ě' => "E",
            'í' | 'î' | 'ï' | 'ī' => "i",
            'Í' | 'Ì' | 'Î' | 'Ï' | 'Ī' => "I",
            'ó' | 'ô' | 'õ' | 'ō' | 'ő' => "o",
            'Ó' | 'Ò' | 'Ô' | 'Õ' | 'Ō' | 'Ő' => "O",
            'ú' | 'û' | 'ū' | 'ů' | 'ű' => "u",
            'Ú' | 'Ù' | 'Û' | 'Ū' | 'Ů' | 'Ű' => "U",
            'ý' | 'ÿ' => "y",
            'Ý' | 'Ÿ' => "Y",
            'ń' | 'ň' => "n",
            'Ń' | 'Ň' => "N",
            'ś' | 'š' => "s",
            'Ś' | 'Š' => "S",
            'ź' | 'ż' | 'ž' => "z",
            'Ź' | 'Ż' | 'Ž' => "Z",
            'ł' => "l",
            'Ł' => "L",
            'ř' => "r",
            'Ř' => "R",
            'œ' => "oe",
            'Œ' => "OE",
            '‘' | '’' | '‚' | '′' | '`' | '´' => "'",
            '“' | '”' | '„' | '«' | '»' | '″' => "\"",
            '‐' | '‑' | '‒' | '–' | '—' | '−' => "-",
            '…' => "...",
            '±' => "+/-",
            '·' | '•' => ".",
            '\t' | '\u{a0}' | '\u{2009}' | '\u{202f}' => " ",
            // Invisible marks (directional isolates, zero-width joiners) carry no text.
            '\u{200b}'..='\u{200f}' | '\u{2066}'..='\u{2069}' | '\u{feff}' => "",
            _ => "?",
        };
        out.push_str(plain);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tables_hold_what_gsm_03_38_defines() {
        assert_eq!(BASIC.chars().count(), 127, "128 less the escape");
        assert_eq!(EXTENSION.chars().count(), 10, "form feed and nine symbols");
        for c in ['ñ', 'Ñ', '¿', '¡', 'é', 'É', 'ü', '@', '€', '['] {
            assert!(is_gsm7(c), "{c}");
        }
        for c in ['á', 'í', 'ó', 'ú', 'Á', 'ç', '±', '…', '’', '`'] {
            assert!(!is_gsm7(c), "{c}");
        }
    }

    #[test]
    fn segments_follow_the_gsm7_and_ucs2_limits() {
        let ascii = |n: usize| "a".repeat(n);
        let accented = |n: usize| "á".repeat(n);
        // (text, encoding, segments)
        let cases = [
            (String::new(), Encoding::Gsm7, 1),
            (ascii(160), Encoding::Gsm7, 1),
            (ascii(161), Encoding::Gsm7, 2),
            (ascii(306), Encoding::Gsm7, 2),
            (ascii(307), Encoding::Gsm7, 3),
            // Extension characters take two septets each.
            ("€".repeat(80), Encoding::Gsm7, 1),
            (format!("{}€", ascii(159)), Encoding::Gsm7, 2),
            // An escaped character does not straddle two parts: 152 + 2 leaves the first short.
            (format!("{}€{}", ascii(152), ascii(152)), Encoding::Gsm7, 3),
            (format!("{}€{}", ascii(151), ascii(152)), Encoding::Gsm7, 2),
            (accented(70), Encoding::Ucs2, 1),
            (accented(71), Encoding::Ucs2, 2),
            (accented(134), Encoding::Ucs2, 2),
            (accented(135), Encoding::Ucs2, 3),
            // One character outside GSM-7 makes the whole text UCS-2.
            (format!("{}á", ascii(69)), Encoding::Ucs2, 1),
            (format!("{}á", ascii(70)), Encoding::Ucs2, 2),
            // A character outside the BMP is two UTF-16 units.
            ("😀".repeat(35), Encoding::Ucs2, 1),
            ("😀".repeat(36), Encoding::Ucs2, 2),
        ];
        for (text, encoding, count) in cases {
            let shown = format!("{} chars", text.chars().count());
            assert_eq!(Encoding::of(&text), encoding, "{shown}");
            assert_eq!(segments(&text), count, "{shown}: {text}");
        }
    }

    #[test]
    fn transliteration_keeps_what_gsm7_has_and_plainens_the_rest() {
        for (given, expected) in [
            ("¿Está a salvo? ¡Sí!", "¿Esta a salvo? ¡Si!"),
            ("Begoña Núñez Peña", "Begoña Nuñez Peña"),
            ("José Ángel Gómez Ibáñez", "José Angel Gomez Ibañez"),
            ("Conceição Gonçalves", "Conceicao Goncalves"),
            ("Müller Øster Åse", "Müller Øster Åse"),
            ("“Ana” — la tía…", "\"Ana\" - la tia..."),
            ("±15 m", "+/-15 m"),
            ("\u{2068}Ana\u{2069}", "Ana"),
            ("王芳", "??"),
        ] {
            let plain = transliterate(given);
            assert_eq!(plain, expected);
            assert_eq!(Encoding::of(&plain), Encoding::Gsm7, "{given}");
        }
    }
}
