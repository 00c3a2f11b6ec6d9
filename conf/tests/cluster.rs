//! `[cluster]`: absent by default (a single instance exports nothing),
//! parsed, rendered and read back; the table's range is checked.

mod common;

use common::{assert_error, parse, BASE};
use conf::{Cluster, Config};

/// BASE with a `[cluster]` section of `body` before the peers.
fn with_cluster(body: &str) -> String {
    BASE.replacen("[[peers]]", &format!("[cluster]\n{body}\n\n[[peers]]"), 1)
}

#[test]
fn cluster_is_off_by_default_and_round_trips() {
    assert_eq!(parse(BASE).expect("BASE parses").cluster, None);
    assert!(!parse(BASE)
        .expect("BASE parses")
        .to_toml_string()
        .contains("[cluster]"));
    for table in [1u8, 100, 252] {
        let text = with_cluster(&format!("export_table = {table}"));
        let c = parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(
            c.cluster,
            Some(Cluster {
                export_table: table
            })
        );
        let rendered = c.to_toml_string();
        assert!(rendered.contains(&format!("\n[cluster]\nexport_table = {table}\n")));
        assert_eq!(
            Config::from_str(&rendered, "rendered.toml").expect("again"),
            c
        );
    }
}

#[test]
fn cluster_refuses_reserved_tables_and_unknown_fields() {
    // Line 21 is the `export_table` line (the section starts at 20).
    for (value, shown) in [
        ("0", 0),
        ("253", 253),
        ("254", 254),
        ("255", 255),
        ("-1", -1),
    ] {
        assert_error(
            &with_cluster(&format!("export_table = {value}")),
            &format!("wgdp.toml:21:16: cluster.export_table: {shown} is out of range 1..=252"),
        );
    }
    assert!(parse(&with_cluster("export_table = \"100\"")).is_err());
    assert!(
        parse(&with_cluster("")).is_err(),
        "export_table is required"
    );
    assert!(parse(&with_cluster("export_table = 100\nexport_tabel = 7")).is_err());
}
