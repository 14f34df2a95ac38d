//! The family's messages in each language, as Project Fluent catalogues (`core/locales/<code>.ftl`)
//! embedded at compile time: a language is one file, and nothing is read at run time.

use std::sync::LazyLock;

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource};

use super::person::Language;

impl Language {
    fn catalogue(self) -> &'static str {
        match self {
            Language::Es => include_str!("../../locales/es.ftl"),
            Language::En => include_str!("../../locales/en.ftl"),
        }
    }
}

type Bundle = FluentBundle<FluentResource>;

static BUNDLES: LazyLock<Vec<(Language, Bundle)>> = LazyLock::new(|| {
    Language::ALL
        .into_iter()
        .map(|language| (language, bundle(language)))
        .collect()
});

/// A catalogue is checked by the tests below; one that does not parse is a build defect.
fn bundle(language: Language) -> Bundle {
    let resource = FluentResource::try_new(language.catalogue().to_owned())
        .unwrap_or_else(|(_, errors)| panic!("{}.ftl: {errors:?}", language.code()));
    let locale = language
        .code()
        .parse()
        .expect("a language code is a locale");
    let mut bundle = FluentBundle::new_concurrent(vec![locale]);
    // No Unicode isolation marks around values: they would make every SMS UCS-2.
    bundle.set_use_isolating(false);
    bundle
        .add_resource(resource)
        .unwrap_or_else(|errors| panic!("{}.ftl: {errors:?}", language.code()));
    bundle
}

fn bundle_for(language: Language) -> &'static Bundle {
    &BUNDLES
        .iter()
        .find(|(l, _)| *l == language)
        .expect("every language has a catalogue")
        .1
}

/// Message `id` in `language` with `args`. A missing id shows as itself, never as a panic; the
/// tests require every id in every catalogue.
pub fn text(language: Language, id: &str, args: &[(&str, &str)]) -> String {
    let bundle = bundle_for(language);
    let Some(pattern) = bundle.get_message(id).and_then(|m| m.value()) else {
        return id.to_owned();
    };
    let mut fluent_args = FluentArgs::new();
    for (name, value) in args {
        fluent_args.set(*name, *value);
    }
    let mut errors = Vec::new();
    bundle
        .format_pattern(pattern, Some(&fluent_args), &mut errors)
        .into_owned()
}

/// The ids of the messages a catalogue defines: its lines `id = …` that start a message.
#[cfg(test)]
pub(crate) fn ids(language: Language) -> Vec<String> {
    language
        .catalogue()
        .lines()
        .filter_map(|line| line.split_once(" ="))
        .map(|(id, _)| id)
        .filter(|id| id.starts_with(|c: char| c.is_ascii_lowercase()))
        .filter(|id| id.chars().all(|c| c.is_ascii_lowercase() || c == '-'))
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_catalogue_parses_and_has_every_message() {
        let reference = ids(Language::Es);
        assert!(reference.len() > 20, "{reference:?}");
        for language in Language::ALL {
            let _ = bundle(language);
            let mut have = ids(language);
            have.sort();
            let mut want = reference.clone();
            want.sort();
            assert_eq!(have, want, "{}.ftl", language.code());
        }
    }

    #[test]
    fn every_message_formats_without_errors_or_isolation_marks() {
        let args = [
            ("name", "Ana"),
            ("link", "https://maps.google.com/?q=1.00000,2.00000"),
            ("phone", "+1 312 738 2383"),
            ("consulate", "Consulado General de México en Chicago"),
            ("city", "Chicago"),
            ("address", "204 S Ashland Ave"),
            ("ciam", "+1 520 623 7874"),
            ("reason", "mistake"),
            ("note", "En camino"),
            ("accuracy", ""),
        ];
        for language in Language::ALL {
            let bundle = bundle_for(language);
            let mut fluent_args = FluentArgs::new();
            for (name, value) in args {
                fluent_args.set(name, value);
            }
            for id in ids(language) {
                let pattern = bundle.get_message(&id).unwrap().value().unwrap();
                let mut errors = Vec::new();
                let formatted = bundle.format_pattern(pattern, Some(&fluent_args), &mut errors);
                assert!(errors.is_empty(), "{}: {id}: {errors:?}", language.code());
                assert!(!formatted.contains(['\u{2068}', '\u{2069}']), "{id}");
            }
        }
        assert_eq!(
            text(
                Language::En,
                "cancelled-sms",
                &[("name", "Ana"), ("reason", "mistake")]
            ),
            "Ana cancelled the alert: it was pressed by mistake."
        );
    }
}
