//! `--via SPEC`: which launcher `umbilical run` goes through. The specs are
//! the library's (`Launcher::from_str`); `--detaches` is the CLI's own.

use umbilical::Launcher;

/// `--via` given once is one launcher; more than once, a chain, outer to
/// inner. `detaches` says a custom launcher exits at once, before the
/// program (`--detaches`, which applies to `custom:` only).
pub fn parse_chain(specs: &[String], detaches: bool) -> Result<Launcher, String> {
    let mut launcher = Launcher::from_specs(specs).map_err(|e| format!("--via {e}"))?;
    if detaches {
        let Launcher::Custom { capabilities, .. } = &mut launcher else {
            return Err("--detaches applies to --via custom:... only".into());
        };
        capabilities.returns_status = false;
        capabilities.detaches = true;
    }
    Ok(launcher)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detaches_applies_to_one_custom_launcher() {
        let specs = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let Ok(Launcher::Custom { prefix, capabilities }) = parse_chain(&specs(&["custom:setsid,-f"]), true) else {
            panic!()
        };
        assert_eq!(prefix, ["setsid", "-f"]);
        assert!(capabilities.detaches && !capabilities.returns_status);
        assert!(parse_chain(&specs(&["sudo"]), true).is_err(), "--detaches only with custom");
        let err = parse_chain(&specs(&["sudo:"]), false).unwrap_err();
        assert!(err.starts_with("--via sudo: the user is empty"), "{err}");
    }
}
