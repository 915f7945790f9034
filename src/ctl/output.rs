//! Printing as rabbitmqctl prints: a header line of column names, then one tab-separated row
//! per object (lists and objects shown as JSON); or, with `--formatter json`, a JSON array of
//! objects with just those columns. Also the renaming of the API's fields to the column names
//! rabbitmqctl uses (`source_name`, `channel_pid` …).

use serde_json::{Map, Value, json};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Formatter {
    Table,
    Json,
}

fn cell(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) if items.iter().all(Value::is_string) => {
            // Tags: rabbitmqctl prints a list as [a, b].
            let joined: Vec<&str> = items.iter().filter_map(Value::as_str).collect();
            format!("[{}]", joined.join(", "))
        }
        Some(other) => other.to_string(),
    }
}

/// The objects of `rows` (a JSON array), `columns` of each.
pub fn table(fmt: Formatter, rows: &Value, columns: &[String]) {
    let empty = Vec::new();
    let rows = rows.as_array().unwrap_or(&empty);
    // rabbitmqctl's `user` column in list_users is the API's `name`.
    let field = |row: &Value, column: &str| -> Option<Value> {
        row.get(column)
            .or_else(|| (column == "user").then(|| row.get("name")).flatten())
            .cloned()
    };
    match fmt {
        Formatter::Json => {
            let objects: Vec<Value> = rows
                .iter()
                .map(|row| {
                    let map: Map<String, Value> = columns
                        .iter()
                        .map(|c| (c.clone(), field(row, c).unwrap_or(Value::Null)))
                        .collect();
                    Value::Object(map)
                })
                .collect();
            println!("{}", Value::Array(objects));
        }
        Formatter::Table => {
            println!("{}", columns.join("\t"));
            for row in rows {
                let cells: Vec<String> = columns
                    .iter()
                    .map(|c| cell(field(row, c).as_ref()))
                    .collect();
                println!("{}", cells.join("\t"));
            }
        }
    }
}

/// The API's bindings with rabbitmqctl's column names.
pub fn bindings_as_rabbitmqctl(rows: &Value) -> Value {
    map_rows(rows, |b| {
        json!({
            "source_name": b["source"], "source_kind": "exchange",
            "destination_name": b["destination"], "destination_kind": b["destination_type"],
            "routing_key": b["routing_key"], "arguments": b["arguments"], "vhost": b["vhost"],
        })
    })
}

/// The API's channels with rabbitmqctl's column names (`pid`: the channel's name here).
pub fn channels_as_rabbitmqctl(rows: &Value) -> Value {
    map_rows(rows, |c| {
        let mut out = c.clone();
        out["pid"] = c["name"].clone();
        out
    })
}

/// The API's consumers with rabbitmqctl's column names.
pub fn consumers_as_rabbitmqctl(rows: &Value) -> Value {
    map_rows(rows, |c| {
        let mut out = c.clone();
        out["queue_name"] = c["queue"]["name"].clone();
        out["channel_pid"] = c["channel_details"]["name"].clone();
        out
    })
}

fn map_rows(rows: &Value, f: impl Fn(&Value) -> Value) -> Value {
    Value::Array(
        rows.as_array()
            .map(|r| r.iter().map(f).collect())
            .unwrap_or_default(),
    )
}

/// `status`: the node's essentials, from the overview and the node.
pub fn status(fmt: Formatter, overview: &Value, nodes: &Value) {
    let node = &nodes[0];
    if fmt == Formatter::Json {
        println!("{}", json!({"overview": overview, "node": node}));
        return;
    }
    println!("Status of node {} ...", cell(overview.get("node")));
    println!("Runtime\n");
    println!("OS PID: {}", cell(node.get("os_pid")));
    println!(
        "Uptime (seconds): {}",
        node["uptime"].as_u64().unwrap_or(0) / 1000
    );
    println!(
        "RabbitMQ version: {}",
        cell(overview.get("rabbitmq_version"))
    );
    println!("Node name: {}", cell(overview.get("node")));
    println!("\nAlarms\n");
    let alarms: Vec<&str> = [("mem_alarm", "memory"), ("disk_free_alarm", "disk")]
        .iter()
        .filter(|(key, _)| node[*key].as_bool() == Some(true))
        .map(|(_, name)| *name)
        .collect();
    if alarms.is_empty() {
        println!("(none)");
    } else {
        println!("{}", alarms.join(", "));
    }
    println!("\nMemory\n");
    println!("Total memory used: {} bytes", cell(node.get("mem_used")));
    println!(
        "Memory high watermark: {} bytes",
        cell(node.get("mem_limit"))
    );
    println!("\nFree Disk Space\n");
    println!("Free disk space: {} bytes", cell(node.get("disk_free")));
    println!(
        "Low free disk space watermark: {} bytes",
        cell(node.get("disk_free_limit"))
    );
    println!("\nFile Descriptors\n");
    println!(
        "Total: {}, limit: {}",
        cell(node.get("fd_used")),
        cell(node.get("fd_total"))
    );
    println!("\nListeners\n");
    for l in overview["listeners"].as_array().into_iter().flatten() {
        println!(
            "Interface: {}, port: {}, protocol: {}",
            cell(l.get("ip_address")),
            cell(l.get("port")),
            cell(l.get("protocol"))
        );
    }
}
