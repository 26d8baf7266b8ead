//! The module as OpenSSL sees it: loading, listing, exports, configuration errors.

mod common;
use common::*;

#[test]
fn list_providers_shows_wd_active_with_its_version() {
    let w = World::new();
    let out = ok(w.openssl(Conf::Host, &["list", "-providers", "-verbose"]));
    let s = stdout(&out);
    let at = s
        .find("\n  wd\n")
        .unwrap_or_else(|| panic!("no wd in:\n{s}"));
    let wd = &s[at..];
    assert!(wd.contains("status: active"), "{s}");
    assert!(
        wd.contains(&format!("version: {}", env!("CARGO_PKG_VERSION"))),
        "{s}"
    );
    assert!(wd.contains("wd-stats"), "{s}");
    // Also through -provider-path / -provider, without any configuration file.
    let dir = modules();
    let out = ok(w.openssl(
        Conf::Default,
        &[
            "list",
            "-providers",
            "-provider-path",
            dir.to_str().unwrap(),
            "-provider",
            "wd",
        ],
    ));
    assert!(stdout(&out).contains("wd\n"), "{}", stdout(&out));
}

#[test]
fn only_the_init_symbol_is_exported() {
    let lib = modules().join("wd.so");
    let out = ok({
        let mut c = std::process::Command::new("nm");
        c.args(["-D", "--defined-only"]).arg(&lib);
        c
    });
    let syms: Vec<String> = stdout(&out)
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2).map(String::from))
        .collect();
    assert_eq!(
        syms,
        vec!["OSSL_provider_init".to_string()],
        "exports: {syms:?}"
    );
}

/// `openssl list -providers` with a broken wd configuration: OpenSSL's CLI drops a
/// provider that fails to load from openssl.cnf; wd must be absent and say why on stderr.
fn not_loaded(c: std::process::Command) -> String {
    let out = ok(c);
    assert!(
        !stdout(&out).contains("\n  wd\n"),
        "wd loaded despite the error:\n{}",
        stdout(&out)
    );
    stderr(&out)
}

/// `openssl.cnf.d/<base>` with `extra` lines at the top of the wd section.
fn write_conf(w: &World, base: &str, extra: &str) -> std::path::PathBuf {
    let base = std::fs::read_to_string(root().join("openssl.cnf.d").join(base)).unwrap();
    assert!(base.contains("[wd_sect]\n"));
    let conf = base.replace("[wd_sect]\n", &format!("[wd_sect]\n{extra}\n"));
    let p = w.path("test.cnf");
    std::fs::write(&p, conf).unwrap();
    p
}

#[test]
fn a_misspelt_key_fails_the_load_with_a_message() {
    let w = World::new();
    let p = write_conf(&w, "wd.cnf", "fallbak = off");
    let mut c = w.openssl(Conf::Host, &["list", "-providers"]);
    c.env("OPENSSL_CONF", &p);
    let err = not_loaded(c);
    assert!(err.contains("unknown key \"fallbak\""), "{err}");
    assert!(err.contains("did you mean fallback"), "{err}");
}

#[test]
fn a_bad_value_fails_the_load_with_a_message() {
    let w = World::new();
    let p = write_conf(&w, "wd.cnf", "min_bits = lots");
    let mut c = w.openssl(Conf::Host, &["list", "-providers"]);
    c.env("OPENSSL_CONF", &p);
    let err = not_loaded(c);
    assert!(err.contains("invalid value \"lots\" for min_bits"), "{err}");
}

#[cfg(feature = "model")]
#[test]
fn a_bad_model_value_fails_the_load_with_a_message() {
    let w = World::new();
    let p = write_conf(&w, "wd-model.cnf", "model_error_ratio = 2");
    let mut c = w.openssl(Conf::Model, &["list", "-providers"]);
    c.env("OPENSSL_CONF", &p);
    let err = not_loaded(c);
    assert!(err.contains("model_error_ratio"), "{err}");
}

#[test]
fn a_bad_environment_override_fails_the_load() {
    let w = World::new().with("WD_FALLBACK", "perhaps");
    let err = not_loaded(w.openssl(Conf::Host, &["list", "-providers"]));
    assert!(err.contains("WD_FALLBACK"), "{err}");
    // Loaded on the command line, the failure is fatal and the reason is on the error queue.
    let err = fails(w.openssl(Conf::Default, &["list", "-providers", "-provider", "wd"]));
    assert!(
        err.contains("OSSL_provider_init") && err.contains("WD_FALLBACK"),
        "{err}"
    );
}

#[cfg(not(feature = "model"))]
#[test]
fn a_build_without_the_model_refuses_it_with_a_message() {
    let w = World::new();
    let err = not_loaded(w.openssl(Conf::Model, &["list", "-providers"]));
    assert!(err.contains("no device model"), "{err}");
    let p = write_conf(&w, "wd.cnf", "model_queues = 4");
    let mut c = w.openssl(Conf::Host, &["list", "-providers"]);
    c.env("OPENSSL_CONF", &p);
    let err = not_loaded(c);
    assert!(
        err.contains("model_queues") && err.contains("no device model"),
        "{err}"
    );
}

#[cfg(feature = "model")]
#[test]
fn wd_stats_command_sums_processes() {
    let w = World::new();
    let msg = w.path("msg");
    std::fs::write(&msg, b"hello").unwrap();
    for _ in 0..2 {
        ok(w.openssl(
            Conf::Model,
            &[
                "dgst",
                "-sha256",
                "-sign",
                key(2048).to_str().unwrap(),
                "-out",
                "/dev/null",
                msg.to_str().unwrap(),
            ],
        ));
    }
    let wd = wd_command();
    let out = ok({
        let mut c = std::process::Command::new(&wd);
        c.args(["stats", "--per-process"]).arg(w.stats_dir());
        c
    });
    let s = stdout(&out);
    assert!(s.contains("2 process(es)"), "{s}");
    assert!(
        s.lines()
            .any(|l| l.trim_start().starts_with("offload_private") && l.trim_end().ends_with(" 2")),
        "{s}"
    );
    assert_eq!(s.matches("pid ").count(), 2, "{s}");
    let out = ok({
        let mut c = std::process::Command::new(&wd);
        c.args(["stats", "--get", "offload_private"])
            .arg(w.stats_dir());
        c
    });
    assert_eq!(stdout(&out).trim(), "2");
    let out = std::process::Command::new(&wd)
        .args(["stats", "--get", "no_such_counter"])
        .arg(w.stats_dir())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
