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

/// Whether `su` to root works here without a password (as root).
fn su_runs() -> bool {
    rustix::process::geteuid().is_root()
        && std::process::Command::new("su")
            .args(["root", "-s", "/bin/sh", "-c", "true"])
            .stdin(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, failure_persistence: None, ..ProptestConfig::default() })]

    /// Issue #26: quoting composes through a chain whose two hops each go
    /// through a real `sh` (`su root -s /bin/sh -c` twice): every word
    /// reaches the program exactly.
    #[test]
    fn words_survive_two_shells_of_a_chain(words in prop::collection::vec("[^\u{0}]{0,10}", 1..5)) {
        if !su_runs() {
            let _ = std::io::Write::write_all(&mut std::io::stderr(),
                b"SKIP: words through two shells of a chain: needs root and su\n");
            return Ok(());
        }
        let su = umbilical::Launcher::Su { user: "root".into() };
        let chain = umbilical::Launcher::Chain(vec![su.clone(), su]);
        let mut args: Vec<std::ffi::OsString> = vec!["%s\\0".into()];
        args.extend(words.iter().map(Into::into));
        let argv = chain.plan("printf".as_ref(), &args).unwrap();
        let out = std::process::Command::new(&argv[0]).args(&argv[1..]).stdin(std::process::Stdio::null()).output().unwrap();
        prop_assert!(out.status.success(), "{argv:?}: {}", String::from_utf8_lossy(&out.stderr));
        let got: Vec<String> = out.stdout.split(|&b| b == 0).map(|w| String::from_utf8_lossy(w).into_owned()).collect();
        prop_assert_eq!(&got[..words.len()], &words[..], "argv {:?}", argv);
    }
}
