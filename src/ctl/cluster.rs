//! `warren ctl cluster_status`'s printing: the members and whether the node has a link to
//! each, then one row per Raft group (leader, term, the node's role, log positions, and on the
//! leader each member's lag in entries).

use serde_json::Value;

use super::output::Formatter;

pub fn print_status(fmt: Formatter, status: &Value) {
    if fmt == Formatter::Json {
        println!("{status}");
        return;
    }
    println!("Cluster status of node {} ...", status["node"]);
    println!("Members");
    println!("id\taddress\tlinked");
    for member in status["members"].as_array().into_iter().flatten() {
        println!(
            "{}\t{}\t{}",
            member["id"],
            text(&member["address"]),
            member["linked"]
        );
    }
    println!();
    println!("Raft groups");
    println!("group\tleader\tterm\trole\tlast_log_index\tlast_applied\tsnapshot\tlog_entries\tlag");
    for group in status["groups"].as_array().into_iter().flatten() {
        let lag = group["lag"]
            .as_object()
            .map(|lag| {
                lag.iter()
                    .map(|(id, behind)| format!("{id}:{}", text(behind)))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default();
        println!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
            text(&group["group"]),
            text(&group["leader"]),
            group["term"],
            text(&group["role"]),
            text(&group["last_log_index"]),
            text(&group["last_applied"]),
            text(&group["snapshot"]),
            group["log_entries"],
            lag
        );
    }
}

/// A value as rabbitmqctl prints it: strings bare, null as "none".
fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "none".into(),
        other => other.to_string(),
    }
}
