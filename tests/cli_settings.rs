//! `cfgledger config ...` as an operator meets it, through the real binary on a real SQLite file: the
//! one-time seeding from `.env`, the precedence of the store over the process environment over the catalog
//! default, locked keys, validation messages, secrets that never leave the process in plaintext, the key
//! file, and custom catalogs.

mod support;

use serde_json::{json, Value};
use support::{contains_bytes, kinds, parse_json, Store, ACTOR};

#[test]
fn first_open_seeds_env_once_in_the_genesis_batch_and_skips_unknown_keys() {
    let s = Store::with_env("# comment\nLOG_LEVEL=warn\nexport MAX_WORKERS=8\nNOT_A_SETTING=1\n");
    let first = s.ok(&["config", "get", "LOG_LEVEL"]);
    assert_eq!(first.stdout, "warn\n");
    assert!(first.stderr.contains("seeded 2 key(s) from .env: LOG_LEVEL, MAX_WORKERS"), "{}", first.stderr);
    assert!(
        first.stderr.contains("skipped unknown key(s) in the .env file: NOT_A_SETTING"),
        "unknown keys are reported: {}",
        first.stderr
    );

    let log = s.log();
    assert_eq!(kinds(&log), ["StoreCreated", "EnvSeeded"]);
    assert_eq!(log[0]["seq"], 1);
    assert_eq!(log[1]["seq"], 2);
    let batch = &log[0]["batch"];
    assert!(batch["id"].as_str().is_some_and(|id| !id.is_empty()), "{batch}");
    assert_eq!(log[1]["batch"]["id"], batch["id"], "genesis and first seeding are one batch");
    assert_eq!(batch["cause"], json!({"type": "open", "env_file": ".env"}));
    assert_eq!(log[1]["actor"]["source"], "system");
    let seeded = &log[1]["payload"];
    assert_eq!(seeded["initial"], true);
    assert_eq!(seeded["file"], ".env");
    assert_eq!(
        seeded["values"],
        json!([
            {"key": "mcpgateway:LOG_LEVEL", "value": {"plain": "warn"}},
            {"key": "mcpgateway:MAX_WORKERS", "value": {"plain": 8}}
        ])
    );
    assert_eq!(seeded["unknown_keys"], json!(["NOT_A_SETTING"]));

    // The unknown key was skipped, not stored under some other name.
    assert_eq!(s.fails(&["config", "get", "NOT_A_SETTING"]).error_line(), "error: unknown key NOT_A_SETTING");
    let get = s.get_json("MAX_WORKERS");
    assert_eq!((get["value"].clone(), get["source"].clone(), get["seq"].clone()), (json!(8), json!("db"), json!(2)));
}

#[test]
fn later_opens_never_overwrite_store_values_from_env() {
    let s = Store::with_env("LOG_LEVEL=warn\n");
    s.ok(&["config", "get", "LOG_LEVEL"]);
    s.write_env("LOG_LEVEL=error\n");
    let again = s.ok(&["config", "get", "LOG_LEVEL", "--output", "json"]);
    let item = parse_json(&again.stdout);
    assert_eq!(item["value"], "warn");
    assert_eq!(item["source"], "db");
    assert!(!again.stderr.contains("seeded"), "nothing is seeded again: {}", again.stderr);
    assert_eq!(kinds(&s.log()), ["StoreCreated", "EnvSeeded"], "a second open appends nothing");
}

#[test]
fn a_key_added_to_env_later_is_seeded_with_initial_false() {
    let s = Store::with_env("LOG_LEVEL=warn\n");
    s.ok(&["config", "get", "LOG_LEVEL"]);
    s.write_env("LOG_LEVEL=error\nCACHE_TTL=90s\n");
    let run = s.ok(&["config", "get", "CACHE_TTL"]);
    assert_eq!(run.stdout, "1m30s\n", "seeded values are canonical");
    assert!(run.stderr.contains("seeded 1 key(s) from .env: CACHE_TTL"), "{}", run.stderr);

    let log = s.log();
    assert_eq!(kinds(&log), ["StoreCreated", "EnvSeeded", "EnvSeeded"]);
    let later = &log[2];
    assert_eq!(later["payload"]["initial"], false);
    assert_eq!(later["payload"]["values"], json!([{"key": "mcpgateway:CACHE_TTL", "value": {"plain": "1m30s"}}]));
    assert_ne!(later["batch"]["id"], log[0]["batch"]["id"], "a later seeding is its own batch");
    assert_eq!(s.get_json("LOG_LEVEL")["value"], "warn", "the changed .env value is still ignored");

    // Once held, the key is never seeded again.
    s.ok(&["config", "get", "CACHE_TTL"]);
    assert_eq!(s.log().len(), 3);
}

#[test]
fn a_key_set_or_seeded_then_reset_is_not_seeded_again() {
    let s = Store::with_env("LOG_LEVEL=warn\n");
    s.set("MAX_WORKERS", "8");
    s.ok(&["config", "reset", "MAX_WORKERS"]);
    s.ok(&["config", "reset", "LOG_LEVEL"]);
    let before = s.log();
    assert_eq!(kinds(&before), ["StoreCreated", "EnvSeeded", "SettingChanged", "SettingReset", "SettingReset"]);

    s.write_env("LOG_LEVEL=warn\nMAX_WORKERS=9\n");
    let workers = s.get_json("MAX_WORKERS");
    assert_eq!((workers["value"].clone(), workers["source"].clone()), (json!(4), json!("default")));
    let level = s.get_json("LOG_LEVEL");
    assert_eq!((level["value"].clone(), level["source"].clone()), (json!("info"), json!("default")));
    assert_eq!(s.log(), before, "no EnvSeeded brings a reset key back");
}

#[test]
fn a_malformed_env_line_names_file_and_line_and_writes_no_event() {
    let s = Store::with_env("LOG_LEVEL=warn\nthis line has no equals sign hunter2\n");
    let run = s.fails_with(2, &["config", "list"]);
    assert_eq!(run.error_line(), "error: 1 line of .env cannot be read; nothing was written:");
    assert!(run.stderr.contains(".env line 2 (this): expected = after the key"), "{}", run.stderr);
    assert!(!run.stderr.contains("hunter2"), "the line's content is not echoed: {}", run.stderr);
    assert!(!s.key_path().exists(), "no key file is created for a store that was not created");
    // `.env` is read and checked before the store is opened: a refused first start leaves no database.
    assert!(!s.db_path().exists(), "no database is created for a store that was not created");

    // A value that does not fit its key is refused the same way, naming file and line.
    s.write_env("LOG_LEVEL=warn\nMAX_WORKERS=lots\n");
    let run = s.fails_with(2, &["config", "list"]);
    assert_eq!(run.error_line(), "error: 1 line of .env refused; nothing was written:");
    let named = r#".env line 2 (MAX_WORKERS): key MAX_WORKERS expects an integer from 1 to 256"#;
    assert!(run.stderr.contains(named), "{}", run.stderr);
    assert!(!run.stderr.contains("lots"), "a .env value is never echoed: {}", run.stderr);
    assert!(!s.db_path().exists() && !s.key_path().exists(), "nothing is left behind");

    // Once the file is fixed, the store is created normally.
    s.write_env("LOG_LEVEL=warn\n");
    s.ok(&["config", "list"]);
    assert_eq!(kinds(&s.log()), ["StoreCreated", "EnvSeeded"]);
}

#[test]
fn precedence_is_store_then_process_env_then_default() {
    let s = Store::new();
    let get = |env: Option<&str>| {
        let mut cmd = s.cmd();
        if let Some(v) = env {
            cmd.env("MAX_WORKERS", v);
        }
        let run = support::run(cmd.args(["config", "get", "MAX_WORKERS", "--output", "json"])).expect_code(0, "get");
        let item = parse_json(&run.stdout);
        (item["value"].clone(), item["source"].as_str().unwrap_or_default().to_string())
    };
    assert_eq!(get(None), (json!(4), "default".to_string()));
    assert_eq!(get(Some("12")), (json!(12), "env".to_string()));
    s.set("MAX_WORKERS", "20");
    assert_eq!(get(Some("12")), (json!(20), "db".to_string()));
    assert_eq!(get(None), (json!(20), "db".to_string()));
    s.ok(&["config", "reset", "MAX_WORKERS"]);
    assert_eq!(get(Some("12")), (json!(12), "env".to_string()));
    assert_eq!(get(None), (json!(4), "default".to_string()));

    // The list shows the same resolution.
    let list = support::run(s.cmd().env("LOG_FORMAT", "text").args(["config", "list", "--output", "json"]))
        .expect_code(0, "list");
    let items = parse_json(&list.stdout);
    let format = items["items"].as_array().and_then(|a| a.iter().find(|i| i["key"] == "LOG_FORMAT")).cloned();
    assert_eq!(format.map(|f| (f["value"].clone(), f["source"].clone())), Some((json!("text"), json!("env"))));
}

#[test]
fn an_invalid_process_env_value_is_ignored_with_a_note() {
    let s = Store::new();
    let run =
        support::run(s.cmd().env("MAX_WORKERS", "lots").args(["config", "get", "MAX_WORKERS", "--output", "json"]))
            .expect_code(0, "get with a bad environment value");
    let item = parse_json(&run.stdout);
    assert_eq!((item["value"].clone(), item["source"].clone()), (json!(4), json!("default")));
    assert!(
        run.stderr.contains(r#"ignored a process environment value: key MAX_WORKERS expects an integer from 1 to 256"#),
        "{}",
        run.stderr
    );
}

#[test]
fn locked_keys_are_refused_audited_and_left_unchanged() {
    let jwt = "seeded-jwt-secret-0123456789abcdef-0123";
    let s = Store::with_env(&format!("JWT_SECRET_KEY={jwt}\n"));
    s.ok(&["config", "list"]);
    let before = s.get_json("JWT_SECRET_KEY");
    assert_eq!((before["seq"].clone(), before["locked"].clone()), (json!(2), json!(true)));

    let attempted = "attempted-jwt-secret-0123456789abcdef-9999";
    let run = s.fails(&["config", "set", "JWT_SECRET_KEY", attempted, "--reason", "rotate"]);
    assert_eq!(run.error_line(), "error: key JWT_SECRET_KEY is locked: it can only be seeded from the environment");
    assert!(!run.stderr.contains(attempted));
    let run = s.fails(&["config", "set", "AUTH_REQUIRED", "false"]);
    assert_eq!(run.error_line(), "error: key AUTH_REQUIRED is locked: it can only be seeded from the environment");
    let run = s.fails(&["config", "reset", "AUTH_REQUIRED"]);
    assert!(run.error_line().contains("AUTH_REQUIRED is locked"), "{run:?}");
    // cfgledger's own encryption secret (the gateway's AUTH_ENCRYPTION_SECRET is an ordinary stored secret).
    let run = s.fails(&["config", "set", "cfgledger:AUTH_ENCRYPTION_SECRET", "0123456789abcdef0123"]);
    assert_eq!(
        run.error_line(),
        "error: key cfgledger:AUTH_ENCRYPTION_SECRET is locked: it is read from the process environment only and never stored"
    );

    let log = s.log();
    assert_eq!(
        kinds(&log),
        ["StoreCreated", "EnvSeeded", "ChangeRejected", "ChangeRejected", "ChangeRejected", "ChangeRejected"]
    );
    let rejected: Vec<(Value, Value, Value)> = log[2..]
        .iter()
        .map(|e| (e["payload"]["key"].clone(), e["payload"]["action"].clone(), e["payload"]["reason"].clone()))
        .collect();
    assert_eq!(
        rejected,
        [
            (json!("mcpgateway:JWT_SECRET_KEY"), json!("set"), json!("locked")),
            (json!("mcpgateway:AUTH_REQUIRED"), json!("set"), json!("locked")),
            (json!("mcpgateway:AUTH_REQUIRED"), json!("reset"), json!("locked")),
            (json!("cfgledger:AUTH_ENCRYPTION_SECRET"), json!("set"), json!("locked")),
        ]
    );
    for e in &log[2..] {
        assert_eq!(e["actor"]["name"], ACTOR);
        assert_eq!(e["actor"]["source"], "cli");
    }
    assert_eq!(log[2]["batch"]["reason"], "rotate");
    assert_eq!(log[2]["payload"]["attempted"], "********", "the attempted secret is sealed and masked");
    assert_eq!(log[3]["payload"]["attempted"], json!({"plain": false}));

    let after = s.get_json("JWT_SECRET_KEY");
    assert_eq!((after["seq"].clone(), after["version"].clone()), (before["seq"].clone(), before["version"].clone()));
    let auth = s.get_json("AUTH_REQUIRED");
    assert_eq!((auth["value"].clone(), auth["source"].clone()), (json!(true), json!("default")));
    assert!(!contains_bytes(&s.database_bytes(), attempted.as_bytes()), "the attempted value is stored sealed");
}

#[test]
fn invalid_values_state_what_is_expected_and_append_nothing() {
    let s = Store::new();
    s.ok(&["config", "list"]);
    let head = s.head();
    let cases = [
        ("LOG_LEVEL", "loud", r#"key LOG_LEVEL expects one of trace, debug, info, warn, error; got "loud""#),
        ("MAX_WORKERS", "eight", r#"key MAX_WORKERS expects an integer from 1 to 256; got "eight""#),
        ("MAX_WORKERS", "0", r#"key MAX_WORKERS expects an integer from 1 to 256; got "0""#),
        ("MAX_WORKERS", "257", r#"key MAX_WORKERS expects an integer from 1 to 256; got "257""#),
        ("UI_ENABLED", "maybe", r#"key UI_ENABLED expects a boolean (true or false); got "maybe""#),
        (
            "CACHE_TTL",
            "5 minutes",
            r#"key CACHE_TTL expects a duration such as 30s, 5m or 1h30m, from 0s to 7d; got "5 minutes""#,
        ),
        ("CACHE_TTL", "8d", r#"key CACHE_TTL expects a duration such as 30s, 5m or 1h30m, from 0s to 7d; got "8d""#),
        (
            "cfgledger:REQUEST_SIZE_LIMIT",
            "1.5",
            r#"key cfgledger:REQUEST_SIZE_LIMIT expects an integer from 1024 to 104857600; got "1.5""#,
        ),
    ];
    for (key, value, message) in cases {
        let run = s.fails(&["config", "set", key, value]);
        assert_eq!(run.error_line(), format!("error: {message}"), "{key}={value}");
        assert_eq!(run.stdout, "", "{key}={value}");
    }
    assert_eq!(s.head(), head, "a refused value appends nothing");
}

#[test]
fn unknown_keys_and_usage_errors() {
    let s = Store::new();
    for args in [
        &["config", "set", "NO_SUCH_KEY", "1"][..],
        &["config", "get", "NO_SUCH_KEY"],
        &["config", "reset", "NO_SUCH_KEY"],
    ] {
        assert_eq!(s.fails(args).error_line(), "error: unknown key NO_SUCH_KEY", "{args:?}");
    }
    assert_eq!(kinds(&s.log()), ["StoreCreated", "EnvSeeded"], "an unknown key is not audited");
    // clap's own errors are usage errors: exit 2.
    s.run(&["config", "set", "LOG_LEVEL"]).expect_code(2, "a missing value");
    s.run(&["config", "frobnicate"]).expect_code(2, "an unknown subcommand");
    s.run(&["log", "--after", "minus-one"]).expect_code(2, "a non-numeric --after");
}

#[test]
fn setting_a_key_to_its_current_value_appends_nothing() {
    let s = Store::new();
    let first = s.set("LOG_LEVEL", "debug");
    assert_eq!(first.stdout, "LOG_LEVEL = debug (seq 3)\n");
    let again = s.set("LOG_LEVEL", "DEBUG");
    assert_eq!(again.stdout, "LOG_LEVEL unchanged: it is already debug\n");
    s.set("CACHE_TTL", "90s");
    assert_eq!(s.set("CACHE_TTL", "1m30s").stdout, "CACHE_TTL unchanged: it is already 1m30s\n");
    s.set("WEBHOOK_SECRET", "same-secret-twice");
    assert_eq!(
        s.set("WEBHOOK_SECRET", "same-secret-twice").stdout,
        "WEBHOOK_SECRET unchanged: it is already ********\n"
    );
    // Resetting a key the store does not hold changes nothing either.
    s.ok(&["config", "reset", "MAX_WORKERS"]);
    assert_eq!(kinds(&s.log()), ["StoreCreated", "EnvSeeded", "SettingChanged", "SettingChanged", "SettingChanged"]);
}

#[test]
fn sensitive_values_never_appear_in_plaintext() {
    let jwt = "jwt-plaintext-marker-0123456789abcdefXYZ";
    let hook = "webhook-plaintext-marker-Q7";
    let s = Store::with_env(&format!("JWT_SECRET_KEY={jwt}\nLOG_LEVEL=warn\n"));
    let set = s.set("WEBHOOK_SECRET", hook);
    assert_eq!(set.stdout, "WEBHOOK_SECRET = ******** (seq 3)\n");
    s.set("WEBHOOK_SECRET", &format!("{hook}-rotated"));

    let mut outputs = Vec::new();
    for args in [
        &["log", "--output", "json"][..],
        &["log"],
        &["config", "list", "--output", "json"],
        &["config", "list"],
        &["config", "get", "JWT_SECRET_KEY"],
        &["config", "get", "JWT_SECRET_KEY", "--output", "json"],
        &["config", "get", "WEBHOOK_SECRET"],
        &["config", "get", "WEBHOOK_SECRET", "--output", "json"],
    ] {
        let run = s.ok(args);
        outputs.push(format!("{}{}", run.stdout, run.stderr));
    }
    for out in &outputs {
        assert!(!out.contains(jwt) && !out.contains(hook), "a secret leaked: {out}");
    }
    assert_eq!(s.ok(&["config", "get", "JWT_SECRET_KEY"]).stdout, "********\n");
    assert_eq!(s.ok(&["config", "get", "WEBHOOK_SECRET"]).stdout, "********\n");
    let list = parse_json(&s.ok(&["config", "list", "--output", "json"]).stdout);
    let shown: Vec<(Value, Value)> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|i| i["key"] == "JWT_SECRET_KEY" || i["key"] == "WEBHOOK_SECRET")
        .map(|i| (i["value"].clone(), i["sensitive"].clone()))
        .collect();
    assert_eq!(shown, [(json!("********"), json!(true)), (json!("********"), json!(true))]);
    let log = s.log();
    assert_eq!(log[1]["payload"]["values"][0], json!({"key": "mcpgateway:JWT_SECRET_KEY", "value": "********"}));
    assert_eq!(log[3]["payload"]["value"], "********");
    assert_eq!(log[3]["payload"]["previous"], "********");

    let bytes = s.database_bytes();
    for secret in [jwt, hook] {
        assert!(!contains_bytes(&bytes, secret.as_bytes()), "{secret} is in the SQLite files in plaintext");
    }
    // The non-secret seeded alongside is there in plaintext, so the search itself does find stored text.
    assert!(contains_bytes(&bytes, br#""plain":"warn""#));
}

#[cfg(unix)]
#[test]
fn a_store_in_a_directory_others_may_write_is_refused_or_warned_about() {
    use std::os::unix::fs::PermissionsExt;
    let s = Store::new();
    let chmod = |mode: u32| std::fs::set_permissions(s.dir(), std::fs::Permissions::from_mode(mode)).unwrap();
    // Writable by others without the sticky bit: refused (exit 3), naming the directory and the fix; no store.
    for (mode, who) in [(0o777, "its group and every user"), (0o770, "its group"), (0o703, "every user")] {
        chmod(mode);
        let run = s.fails_with(3, &["config", "set", "LOG_LEVEL", "debug"]);
        let line = run.error_line().to_string();
        assert!(line.contains(&format!("is writable by {who} (mode {mode:04o})")), "{line}");
        assert!(line.contains(&format!("chmod g-w,o-w {}", s.dir().display())), "{line}");
        assert!(!s.db_path().exists(), "a refused open created the store");
    }
    // Sticky, as /tmp: opened, with a warning.
    chmod(0o1777);
    let run = s.ok(&["config", "set", "LOG_LEVEL", "debug"]);
    assert!(run.stderr.contains("warning: the directory") && run.stderr.contains("(mode 1777)"), "{}", run.stderr);
    chmod(0o700);
    let run = s.ok(&["config", "get", "LOG_LEVEL"]);
    assert_eq!(run.stdout.trim(), "debug");
    assert!(!run.stderr.contains("warning: the directory"), "{}", run.stderr);
}

#[cfg(unix)]
#[test]
fn the_key_file_is_created_once_with_mode_0600() {
    use std::os::unix::fs::PermissionsExt;
    let s = Store::new();
    let first = s.ok(&["config", "list"]);
    let key = s.key_path();
    assert!(
        first.stderr.contains(&format!("created encryption key file {} (mode 0600)", key.display())),
        "{}",
        first.stderr
    );
    let meta = std::fs::metadata(&key).expect("the key file exists");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let content = std::fs::read_to_string(&key).expect("read the key file");
    assert!(content.trim().len() >= 32, "the key file holds a long random secret");
    let again = s.ok(&["config", "list"]);
    assert!(!again.stderr.contains("created encryption key file"), "{}", again.stderr);
    assert_eq!(std::fs::read_to_string(&key).expect("read the key file"), content, "the key file is not rewritten");
}

#[test]
fn a_wrong_or_missing_encryption_secret_is_a_clear_error() {
    let s = Store::new();
    s.set("WEBHOOK_SECRET", "sealed-under-the-key-file");
    let head = s.head();

    let run = support::run(s.cmd().env("CFGLEDGER_AUTH_ENCRYPTION_SECRET", "not-the-secret-of-this-store").args([
        "config",
        "get",
        "LOG_LEVEL",
    ]))
    .expect_code(2, "a wrong secret");
    let line = run.error_line();
    assert!(line.starts_with("error: CFGLEDGER_AUTH_ENCRYPTION_SECRET does not match this store"), "{line}");
    assert!(!line.contains("not-the-secret-of-this-store"), "the secret is not echoed: {line}");

    std::fs::remove_file(s.key_path()).expect("remove the key file");
    let run = s.fails_with(2, &["config", "get", "LOG_LEVEL"]);
    assert!(run.error_line().contains("restore the key file"), "{run:?}");
    assert!(!s.key_path().exists(), "a lost key file is not silently replaced by a new one");
    // Reading the raw log needs no key.
    assert_eq!(s.head(), head);
}

#[test]
fn a_secret_given_at_creation_means_no_key_file_and_is_never_stored() {
    let secret = "given-encryption-secret-0123456789";
    let s = Store::new();
    let with_secret = |args: &[&str]| support::run(s.cmd().env("CFGLEDGER_AUTH_ENCRYPTION_SECRET", secret).args(args));
    let first = with_secret(&["config", "set", "WEBHOOK_SECRET", "hook-value-123"]).expect_code(0, "set");
    assert!(!first.stderr.contains("created encryption key file"), "{}", first.stderr);
    assert!(!s.key_path().exists());
    let get = with_secret(&["config", "get", "WEBHOOK_SECRET"]).expect_code(0, "get");
    assert_eq!(get.stdout, "********\n");

    // Without the secret the store cannot be opened for settings.
    let run = s.fails_with(2, &["config", "get", "LOG_LEVEL"]);
    assert!(run.error_line().contains("set CFGLEDGER_AUTH_ENCRYPTION_SECRET"), "{run:?}");
    assert!(!s.key_path().exists(), "no key file appears for an existing store");
    assert!(!contains_bytes(&s.database_bytes(), secret.as_bytes()));
}

#[test]
fn a_secret_in_env_file_is_used_but_not_seeded() {
    let secret = "dotenv-encryption-secret-0123456789";
    let s = Store::with_env(&format!("CFGLEDGER_AUTH_ENCRYPTION_SECRET={secret}\nLOG_LEVEL=debug\n"));
    let first = s.ok(&["config", "set", "WEBHOOK_SECRET", "hook-value-456"]);
    assert!(first.stderr.contains("seeded 1 key(s) from .env: LOG_LEVEL"), "{}", first.stderr);
    assert!(!s.key_path().exists(), "the .env secret replaces the key file");
    let log = s.log();
    assert_eq!(log[1]["payload"]["values"], json!([{"key": "mcpgateway:LOG_LEVEL", "value": {"plain": "debug"}}]));
    assert!(!contains_bytes(&s.database_bytes(), secret.as_bytes()));
    // The secret in use is reported as set (from .env, through the environment layer), and masked.
    let item = s.get_json("cfgledger:AUTH_ENCRYPTION_SECRET");
    assert_eq!((item["value"].clone(), item["source"].clone()), (json!("********"), json!("env")));
}

#[test]
fn list_filters_by_category_and_refuses_an_unknown_one() {
    let s = Store::new();
    let logging = ["config", "list", "--namespace", "cfgledger", "--category", "logging"];
    let list = parse_json(&s.ok(&[&logging[..], &["--output", "json"]].concat()).stdout);
    let keys: Vec<&str> = list["items"].as_array().expect("items").iter().filter_map(|i| i["key"].as_str()).collect();
    assert_eq!(keys, ["LOG_LEVEL", "LOG_FORMAT"]);
    assert!(list["items"].as_array().expect("items").iter().all(|i| i["category"] == "logging"));
    assert_eq!(list["head"], 2);

    let table = s.ok(&logging).stdout;
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("KEY") && lines[0].contains("SOURCE"), "{table}");
    assert_eq!(lines.len(), 1 + 2 + 1, "a header, two keys and the flag legend: {table}");

    let run = s.fails_with(2, &["config", "list", "--category", "nonsense"]);
    assert_eq!(
        run.error_line(),
        "error: unknown category nonsense; categories are server, security, database, features, limits, performance, logging"
    );
}

const EXTEND: &str = r#"
mode = "extend"

[[settings]]
key = "MY_LIMIT"
type = "int"
min = 1
max = 10
default = 5
category = "custom"
reload = "hot"
description = "a key from a catalog file"
"#;

#[test]
fn an_extending_catalog_adds_a_usable_key() {
    let s = Store::new();
    std::fs::write(s.dir().join("extra.toml"), EXTEND).expect("write the catalog");
    let with = |args: &[&str]| s.run(&[&["--catalog", "extra.toml"][..], args].concat());
    let item = parse_json(&with(&["config", "get", "MY_LIMIT", "--output", "json"]).expect_code(0, "get").stdout);
    assert_eq!((item["value"].clone(), item["source"].clone()), (json!(5), json!("default")));
    // On the catalog as it ships, a new store also generates the gateway's two secrets and two passwords
    // (seqs 3 to 6).
    assert_eq!(with(&["config", "set", "MY_LIMIT", "7"]).expect_code(0, "set").stdout, "MY_LIMIT = 7 (seq 7)\n");
    let run = with(&["config", "set", "MY_LIMIT", "11"]).expect_code(1, "out of range");
    assert_eq!(run.error_line(), r#"error: key MY_LIMIT expects an integer from 1 to 10; got "11""#);
    let list = parse_json(
        &with(&["config", "list", "--category", "custom", "--output", "json"]).expect_code(0, "list").stdout,
    );
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(list["items"][0]["value"], 7);
    // Built-in keys are still there (the gateway's own LOG_LEVEL, with its default).
    assert_eq!(with(&["config", "get", "LOG_LEVEL"]).expect_code(0, "get").stdout, "ERROR\n");
    // Without the catalog the key is unknown, though the log holds it.
    assert_eq!(s.fails(&["config", "get", "MY_LIMIT"]).error_line(), "error: unknown key MY_LIMIT");
}

#[test]
fn a_bad_catalog_is_refused_at_start_naming_the_file() {
    let dup =
        "mode = \"replace\"\n\n[[settings]]\nkey = \"A_KEY\"\ntype = \"bool\"\ncategory = \"c\"\nreload = \"hot\"\n\n\
               [[settings]]\nkey = \"A_KEY\"\ntype = \"int\"\ncategory = \"c\"\nreload = \"hot\"\n";
    let bad_default = EXTEND.replace("default = 5", "default = 50");
    let cases = [
        ("dup.toml", dup.to_string(), "error: catalog dup.toml: setting A_KEY: declared twice".to_string()),
        (
            "default.toml",
            bad_default,
            "error: catalog default.toml: setting MY_LIMIT: default does not fit its type: key MY_LIMIT expects an integer from 1 to 10; got 50".to_string(),
        ),
        ("junk.toml", "this is [not toml\n".to_string(), "error: catalog junk.toml: TOML parse error at line 1, column 6".to_string()),
        ("junk.json", "{\"settings\": [".to_string(), "error: catalog junk.json: ".to_string()),
    ];
    for (name, text, message) in cases {
        let s = Store::new();
        std::fs::write(s.dir().join(name), text).expect("write the catalog");
        let run = s.fails_with(2, &["--catalog", name, "config", "list"]);
        assert!(run.error_line().starts_with(&message), "{name}: {}", run.stderr);
        assert!(!s.db_path().exists(), "{name}: the catalog is checked before any store is opened");
    }
    let s = Store::new();
    let run = s.fails_with(2, &["--catalog", "missing.toml", "config", "list"]);
    assert!(run.error_line().starts_with("error: catalog missing.toml: cannot read"), "{}", run.stderr);
}

/// An extending catalog that declares one key twice must be refused as a replacing one is; it is accepted
/// today, the later declaration silently winning (see `Catalog::from_file` in events/src/catalog.rs).
#[test]
fn an_extending_catalog_that_declares_a_key_twice_is_refused() {
    let s = Store::new();
    let twice = format!(
        "{EXTEND}\n[[settings]]\nkey = \"MY_LIMIT\"\ntype = \"bool\"\ncategory = \"custom\"\nreload = \"hot\"\n"
    );
    std::fs::write(s.dir().join("twice.toml"), twice).expect("write the catalog");
    let run = s.run(&["--catalog", "twice.toml", "config", "get", "MY_LIMIT", "--output", "json"]);
    assert_eq!(run.code, Some(2), "accepted a catalog that declares MY_LIMIT twice: {}", run.stdout);
    assert_eq!(run.error_line(), "error: catalog twice.toml: setting MY_LIMIT: declared twice");
}

#[test]
fn the_table_output_shows_source_and_flags() {
    let s = Store::with_env("LOG_LEVEL=warn\n");
    let table = s.ok(&["config", "list"]).stdout;
    let row = |key: &str| {
        table
            .lines()
            .find(|l| l.split_whitespace().next() == Some(key))
            .unwrap_or_else(|| panic!("no row for {key} in {table}"))
            .split_whitespace()
            .collect::<Vec<_>>()
    };
    assert_eq!(row("LOG_LEVEL"), ["LOG_LEVEL", "warn", "db", "enum/hot", "logging", "---"]);
    assert_eq!(row("AUTH_REQUIRED"), ["AUTH_REQUIRED", "true", "default", "bool/restart", "security", "L--"]);
    assert_eq!(row("WEBHOOK_SECRET"), ["WEBHOOK_SECRET", "unset", "string/hot", "limits", "-S-"]);
}

#[test]
fn commands_that_only_work_on_the_store_refuse_server_and_create_nothing() {
    let s = Store::new();
    let cases: [(&str, &[&str]); 7] = [
        ("serve", &["serve"]),
        ("log", &["log"]),
        ("verify", &["verify"]),
        ("clone", &["clone", "--from", "sqlite://a.db", "--to", "sqlite://b.db"]),
        ("user", &["user", "list"]),
        ("token issue", &["token", "issue", "--sub", "ci", "--role", "viewer"]),
        ("token rotate-key", &["token", "rotate-key", "--grace", "1h", "--reason", "ci"]),
    ];
    for (what, args) in cases {
        let run = s.fails_with(2, &[&["--server", "http://127.0.0.1:9"][..], args].concat());
        assert_eq!(
            run.error_line(),
            format!("error: {what} works on the store itself (--db); it cannot run through --server: run it where the store is")
        );
        assert!(!s.db_path().exists(), "{what} --server created a local store");
    }
    // Inspecting users never creates a store or its key file: exit 3, the store is unavailable.
    let run = s.fails_with(3, &["user", "list"]);
    assert_eq!(run.error_line(), format!("error: the store is unavailable: no store at {}", s.db_path().display()));
    assert!(!s.db_path().exists() && !s.key_path().exists(), "user list created a store");
}

#[test]
fn errors_exit_by_kind_and_print_their_cause() {
    let s = Store::new();
    // Usage and bad input: 2.
    s.fails_with(2, &["token", "issue", "--sub", "ci", "--role", "superuser"]);
    let missing = s.fails_with(2, &["config", "import", "no-such-file.json"]);
    assert_eq!(missing.error_line(), "error: cannot read no-such-file.json");
    assert!(missing.stderr.contains("\n  caused by: No such file or directory"), "{}", missing.stderr);
    // A refusal by the store's rules: 1.
    s.fails(&["config", "set", "MAX_WORKERS", "100000"]);
}
