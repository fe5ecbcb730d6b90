//! `sh_quote` against a real POSIX shell: any argument (without NUL)
//! survives a round trip through `sh -c` unchanged.

#![cfg(unix)]

use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn words_survive_sh(words in prop::collection::vec("[^\u{0}]{0,12}", 1..6)) {
        let script = std::iter::once("printf '%s\\0'".to_string())
            .chain(words.iter().map(|w| umbilical::sh_quote(w)))
            .collect::<Vec<_>>()
            .join(" ");
        let out = std::process::Command::new("sh").arg("-c").arg(&script).output().unwrap();
        prop_assert!(out.status.success(), "sh failed on {script:?}");
        let got: Vec<String> = out.stdout.split(|&b| b == 0).map(|w| String::from_utf8_lossy(w).into_owned()).collect();
        prop_assert_eq!(&got[..words.len()], &words[..], "script {:?}", script);
    }
}
