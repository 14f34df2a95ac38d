//! Phone numbers checked against the real numbering plans (libphonenumber's metadata, through the
//! `phonenumber` crate), not only their shape: `+1 555 …` and unassigned area codes are refused. The
//! directory uses it for the numbers a family will call, contact validation for the numbers texted.

use std::fmt;

use phonenumber::Mode;
use phonenumber::country::Id;
use serde::{Deserialize, Serialize};

/// Regions that share the US's +1 numbering plan and are the US: the states and DC, and the inhabited
/// territories. Canada and the Caribbean nations dial +1 too and are not accepted.
const US_REGIONS: [Id; 6] = [Id::US, Id::PR, Id::GU, Id::VI, Id::AS, Id::MP];

/// Why a text is not a usable US number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhoneProblem {
    /// Not `+1` and ten digits: the only form the directory stores.
    NotE164,
    /// Well formed, but no number of any kind exists there in the numbering plan.
    NotInNumberingPlan,
    /// A valid +1 number of Canada or a Caribbean country, not of the US.
    NotUs,
}

impl fmt::Display for PhoneProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PhoneProblem::NotE164 => "must be a US number in E.164 form, e.g. +12025550123",
            PhoneProblem::NotInNumberingPlan => {
                "is not a number in use in the North American numbering plan"
            }
            PhoneProblem::NotUs => "is a number outside the US and its territories",
        })
    }
}

/// Checks that `e164` is `+1` and ten digits, and a valid number of the US or a US territory.
pub fn check_us_phone(e164: &str) -> Result<(), PhoneProblem> {
    let Some(digits) = e164.strip_prefix("+1") else {
        return Err(PhoneProblem::NotE164);
    };
    if digits.len() != 10 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(PhoneProblem::NotE164);
    }
    let number = phonenumber::parse(None, e164).map_err(|_| PhoneProblem::NotInNumberingPlan)?;
    if !phonenumber::is_valid(&number) {
        return Err(PhoneProblem::NotInNumberingPlan);
    }
    match number.country().id() {
        Some(region) if US_REGIONS.contains(&region) => Ok(()),
        _ => Err(PhoneProblem::NotUs),
    }
}

/// The countries whose phones a family contact may give: those an SMS route reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Country {
    /// The US and its territories (one +1 numbering plan and one SMS route).
    #[serde(rename = "US")]
    Us,
    #[serde(rename = "MX")]
    Mx,
}

/// A contact's number as libphonenumber normalises it, and the country it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactPhone {
    pub e164: String,
    pub country: Country,
}

/// Why a well-formed E.164 text is not a number a contact can be texted at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContactPhoneProblem {
    /// No number of any kind exists there in that country's numbering plan.
    NotInNumberingPlan,
    /// A real number of a country no SMS route serves yet.
    CountryNotServed,
}

impl fmt::Display for ContactPhoneProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ContactPhoneProblem::NotInNumberingPlan => {
                "is not a number in use in its country's numbering plan"
            }
            ContactPhoneProblem::CountryNotServed => {
                "only US and Mexican numbers can be texted; give this contact an email instead"
            }
        })
    }
}

/// Checks an E.164 number against the numbering plans and normalises it. A Mexican mobile given
/// with the `1` once dialled after `+52` (still how many phones store it) is stored without it:
/// libphonenumber's plan for Mexico no longer knows that token since it was withdrawn in 2019.
pub fn check_contact_phone(e164: &str) -> Result<ContactPhone, ContactPhoneProblem> {
    let e164 = match e164.strip_prefix("+521") {
        Some(national) if national.len() == 10 => format!("+52{national}"),
        _ => e164.to_owned(),
    };
    let number =
        phonenumber::parse(None, &e164).map_err(|_| ContactPhoneProblem::NotInNumberingPlan)?;
    if !phonenumber::is_valid(&number) {
        return Err(ContactPhoneProblem::NotInNumberingPlan);
    }
    let country = match number.country().id() {
        Some(region) if US_REGIONS.contains(&region) => Country::Us,
        Some(Id::MX) => Country::Mx,
        _ => return Err(ContactPhoneProblem::CountryNotServed),
    };
    Ok(ContactPhone {
        e164: number.format().mode(Mode::E164).to_string(),
        country,
    })
}

/// A number as people read it with most of it hidden: the country calling code, the national
/// number's digits as bullets grouped as the number is usually written, the last four shown
/// (`+52 ••• ••• 5678`). Anything not a number in E.164 form shows nothing of itself.
pub fn masked(e164: &str) -> String {
    let hidden = || "•••".to_owned();
    let number = phonenumber::parse(None, e164).ok();
    let Some(number) = number.filter(|n| n.format().mode(Mode::E164).to_string() == e164) else {
        return hidden();
    };
    let code = format!("+{}", number.code().value());
    let written = number.format().mode(Mode::International).to_string();
    let Some(national) = written.strip_prefix(&code) else {
        return hidden();
    };
    let digits = national.chars().filter(char::is_ascii_digit).count();
    if digits <= 4 {
        return hidden();
    }
    let mut seen = 0;
    let groups: String = national
        .trim()
        .chars()
        .map(|c| {
            if !c.is_ascii_digit() {
                return ' ';
            }
            seen += 1;
            if seen > digits - 4 { c } else { '•' }
        })
        .collect();
    format!("{code} {groups}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_us_numbers_pass() {
        // The CIAM line (Tucson), a consulate switchboard, and a Puerto Rico number.
        for number in ["+15206237874", "+17132716800", "+17877214000"] {
            assert_eq!(check_us_phone(number), Ok(()), "{number}");
        }
    }

    #[test]
    fn the_shape_is_checked_first() {
        for number in [
            "",
            "5206237874",
            "+1 520 623 7874",
            "+1520623787",
            "+152062378745",
            "+44207946000",
            "+1520623787x",
        ] {
            assert_eq!(
                check_us_phone(number),
                Err(PhoneProblem::NotE164),
                "{number}"
            );
        }
    }

    #[test]
    fn numbers_outside_the_plan_are_refused() {
        // Area codes 000 and 555 are never assigned; 911 and 411 are service codes, not area codes.
        for number in [
            "+10006237874",
            "+15556237874",
            "+19116237874",
            "+14116237874",
        ] {
            assert_eq!(
                check_us_phone(number),
                Err(PhoneProblem::NotInNumberingPlan),
                "{number}"
            );
        }
    }

    #[test]
    fn canadian_and_caribbean_numbers_are_not_us() {
        // Toronto (416) and Kingston, Jamaica (876) dial +1 too.
        assert_eq!(check_us_phone("+14169795000"), Err(PhoneProblem::NotUs));
        assert_eq!(check_us_phone("+18769269400"), Err(PhoneProblem::NotUs));
    }

    #[test]
    fn contact_phones_are_normalised_with_their_country() {
        for (given, e164, country) in [
            ("+13125550100", "+13125550100", Country::Us),
            ("+17877214000", "+17877214000", Country::Us),
            // The SRE's switchboard in Mexico City, and a Mexico City mobile with and without the
            // `1` that mobiles were once dialled with.
            ("+525536865100", "+525536865100", Country::Mx),
            ("+5215512345678", "+525512345678", Country::Mx),
            ("+525512345678", "+525512345678", Country::Mx),
        ] {
            let phone = check_contact_phone(given).unwrap_or_else(|e| panic!("{given}: {e}"));
            assert_eq!((phone.e164.as_str(), phone.country), (e164, country));
        }
    }

    #[test]
    fn impossible_and_unserved_contact_phones_are_refused() {
        for (given, problem) in [
            ("+113125550100", ContactPhoneProblem::NotInNumberingPlan),
            ("+15556237874", ContactPhoneProblem::NotInNumberingPlan),
            ("+5212345", ContactPhoneProblem::NotInNumberingPlan),
            ("+999123456789", ContactPhoneProblem::NotInNumberingPlan),
            ("+14169795000", ContactPhoneProblem::CountryNotServed),
            ("+447911123456", ContactPhoneProblem::CountryNotServed),
        ] {
            assert_eq!(check_contact_phone(given), Err(problem), "{given}");
        }
    }

    #[test]
    fn masked_numbers_keep_the_country_code_the_grouping_and_the_last_four() {
        for (e164, shown) in [
            ("+13125550100", "+1 ••• ••• 0100"),
            ("+17877214000", "+1 ••• ••• 4000"),
            ("+525512345678", "+52 •• •••• 5678"),
            ("+522221234567", "+52 ••• ••• 4567"),
            // Not a number in E.164 form: nothing of it is shown.
            ("+1312", "•••"),
            ("+13125550100x", "•••"),
            ("+1 312 555 0100", "•••"),
            ("", "•••"),
        ] {
            assert_eq!(masked(e164), shown, "{e164}");
        }
    }
}
