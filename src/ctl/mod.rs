//! `warren ctl`: rabbitmqctl's everyday verbs, spoken to a running broker through its
//! management HTTP API (so it works wherever the API is reachable, and checks what the API
//! checks). Output as rabbitmqctl prints it: an info line, then a tab-separated table with a
//! header; `--formatter json` prints JSON instead.
//!
//! This file owns the command line and what each verb asks of the API (policies.rs the policy
//! verbs); http.rs the requests, output.rs the printing. No broker code runs here.

mod cluster;
mod http;
mod output;
mod policies;

use clap::{Args, Subcommand};
use serde_json::{Value, json};

use http::Api;
pub use http::encode as encode_path_segment;
use output::Formatter;

#[derive(Args, Debug)]
pub struct CtlArgs {
    /// The management API (default http://127.0.0.1:15672).
    #[arg(long, default_value = "http://127.0.0.1:15672")]
    url: String,
    #[arg(long, default_value = "guest")]
    user: String,
    #[arg(long, default_value = "guest")]
    password: String,
    /// Output: rabbitmqctl's tab-separated table, or JSON.
    #[arg(long, value_enum, default_value = "table", global = true)]
    formatter: Formatter,
    #[command(subcommand)]
    verb: Verb,
}

/// The vhost a verb works in (rabbitmqctl's `-p`).
#[derive(Args, Debug)]
pub struct VhostArg {
    #[arg(short = 'p', long = "vhost", default_value = "/")]
    vhost: String,
}

#[derive(Subcommand, Debug)]
#[command(rename_all = "snake_case")]
enum Verb {
    /// The node: versions, listeners, alarms, memory.
    Status,
    /// The cluster as the node sees it: members, links, each Raft group's leader, term, lag.
    ClusterStatus,
    ListQueues {
        #[command(flatten)]
        vhost: VhostArg,
        /// Columns (default: name messages).
        columns: Vec<String>,
    },
    ListExchanges {
        #[command(flatten)]
        vhost: VhostArg,
        columns: Vec<String>,
    },
    ListBindings {
        #[command(flatten)]
        vhost: VhostArg,
        columns: Vec<String>,
    },
    ListConnections {
        columns: Vec<String>,
    },
    ListChannels {
        columns: Vec<String>,
    },
    ListConsumers {
        #[command(flatten)]
        vhost: VhostArg,
        columns: Vec<String>,
    },
    AddUser {
        name: String,
        password: String,
    },
    DeleteUser {
        name: String,
    },
    ChangePassword {
        name: String,
        password: String,
    },
    SetUserTags {
        name: String,
        tags: Vec<String>,
    },
    ListUsers,
    AddVhost {
        name: String,
    },
    DeleteVhost {
        name: String,
    },
    ListVhosts {
        columns: Vec<String>,
    },
    SetPermissions {
        #[command(flatten)]
        vhost: VhostArg,
        user: String,
        configure: String,
        write: String,
        read: String,
    },
    ClearPermissions {
        #[command(flatten)]
        vhost: VhostArg,
        user: String,
    },
    ListPermissions {
        #[command(flatten)]
        vhost: VhostArg,
    },
    PurgeQueue {
        #[command(flatten)]
        vhost: VhostArg,
        name: String,
    },
    DeleteQueue {
        #[command(flatten)]
        vhost: VhostArg,
        name: String,
    },
    CloseConnection {
        name: String,
        reason: String,
    },
    /// Writes the definitions to FILE ("-" for standard output).
    ExportDefinitions {
        file: String,
    },
    /// Imports definitions from FILE ("-" for standard input).
    ImportDefinitions {
        file: String,
    },
    SetPolicy(policies::SetPolicy),
    ClearPolicy(policies::ClearPolicy),
    ListPolicies(policies::ListPolicies),
    SetOperatorPolicy(policies::SetPolicy),
    ClearOperatorPolicy(policies::ClearPolicy),
    ListOperatorPolicies(policies::ListPolicies),
}

/// Runs one verb; the process's exit status.
pub fn run(args: CtlArgs) -> std::process::ExitCode {
    let api = Api::new(&args.url, &args.user, &args.password);
    match verb(&api, args.formatter, args.verb) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error:\n{e}");
            // rabbitmqctl's status for a failed command (EX_SOFTWARE for most).
            std::process::ExitCode::from(70)
        }
    }
}

fn path(segment: &str) -> String {
    http::encode(segment)
}

fn columns_or(given: Vec<String>, default: &[&str]) -> Vec<String> {
    if given.is_empty() {
        default.iter().map(|c| c.to_string()).collect()
    } else {
        given
    }
}

fn verb(api: &Api, fmt: Formatter, verb: Verb) -> Result<(), String> {
    match verb {
        Verb::ClusterStatus => {
            let status = api
                .get_optional("/api/cluster-status")?
                .ok_or("this node is not part of a cluster")?;
            cluster::print_status(fmt, &status);
        }
        Verb::Status => {
            let overview = api.get("/api/overview")?;
            let node = api.get("/api/nodes")?;
            output::status(fmt, &overview, &node);
        }
        Verb::ListQueues { vhost, columns } => {
            let columns = columns_or(columns, &["name", "messages"]);
            println_info(
                fmt,
                &format!("Listing queues for vhost {} ...", vhost.vhost),
            );
            let rows = api.get(&format!("/api/queues/{}", path(&vhost.vhost)))?;
            output::table(fmt, &rows, &columns);
        }
        Verb::ListExchanges { vhost, columns } => {
            let columns = columns_or(columns, &["name", "type"]);
            println_info(
                fmt,
                &format!("Listing exchanges for vhost {} ...", vhost.vhost),
            );
            let rows = api.get(&format!("/api/exchanges/{}", path(&vhost.vhost)))?;
            output::table(fmt, &rows, &columns);
        }
        Verb::ListBindings { vhost, columns } => {
            let default = [
                "source_name",
                "source_kind",
                "destination_name",
                "destination_kind",
                "routing_key",
                "arguments",
            ];
            let columns = columns_or(columns, &default);
            println_info(
                fmt,
                &format!("Listing bindings for vhost {}...", vhost.vhost),
            );
            let rows = api.get(&format!("/api/bindings/{}", path(&vhost.vhost)))?;
            output::table(fmt, &output::bindings_as_rabbitmqctl(&rows), &columns);
        }
        Verb::ListConnections { columns } => {
            let columns = columns_or(columns, &["user", "peer_host", "peer_port", "state"]);
            println_info(fmt, "Listing connections ...");
            output::table(fmt, &api.get("/api/connections")?, &columns);
        }
        Verb::ListChannels { columns } => {
            let default = ["pid", "user", "consumer_count", "messages_unacknowledged"];
            let columns = columns_or(columns, &default);
            println_info(fmt, "Listing channels ...");
            output::table(
                fmt,
                &output::channels_as_rabbitmqctl(&api.get("/api/channels")?),
                &columns,
            );
        }
        Verb::ListConsumers { vhost, columns } => {
            let default = [
                "queue_name",
                "channel_pid",
                "consumer_tag",
                "ack_required",
                "prefetch_count",
                "active",
                "arguments",
            ];
            let columns = columns_or(columns, &default);
            println_info(
                fmt,
                &format!("Listing consumers in vhost {} ...", vhost.vhost),
            );
            let rows = api.get(&format!("/api/consumers/{}", path(&vhost.vhost)))?;
            output::table(fmt, &output::consumers_as_rabbitmqctl(&rows), &columns);
        }
        Verb::AddUser { name, password } => {
            println_info(fmt, &format!("Adding user \"{name}\" ..."));
            if api
                .get_optional(&format!("/api/users/{}", path(&name)))?
                .is_some()
            {
                return Err(format!("User \"{name}\" already exists"));
            }
            api.put(
                &format!("/api/users/{}", path(&name)),
                &json!({"password": password, "tags": ""}),
            )?;
        }
        Verb::DeleteUser { name } => {
            println_info(fmt, &format!("Deleting user \"{name}\" ..."));
            api.delete(&format!("/api/users/{}", path(&name)))?;
        }
        Verb::ChangePassword { name, password } => {
            println_info(fmt, &format!("Changing password for user \"{name}\" ..."));
            let user = api
                .get_optional(&format!("/api/users/{}", path(&name)))?
                .ok_or_else(|| format!("User \"{name}\" does not exist"))?;
            let body = json!({"password": password, "tags": user["tags"].clone()});
            api.put(&format!("/api/users/{}", path(&name)), &body)?;
        }
        Verb::SetUserTags { name, tags } => {
            println_info(
                fmt,
                &format!("Setting tags for user \"{name}\" to {tags:?} ..."),
            );
            let user = api
                .get_optional(&format!("/api/users/{}", path(&name)))?
                .ok_or_else(|| format!("User \"{name}\" does not exist"))?;
            let body = json!({
                "password_hash": user["password_hash"].clone(),
                "hashing_algorithm": user["hashing_algorithm"].clone(),
                "tags": tags.join(","),
            });
            api.put(&format!("/api/users/{}", path(&name)), &body)?;
        }
        Verb::ListUsers => {
            println_info(fmt, "Listing users ...");
            output::table(
                fmt,
                &api.get("/api/users")?,
                &["user".into(), "tags".into()],
            );
        }
        Verb::AddVhost { name } => {
            println_info(fmt, &format!("Adding vhost \"{name}\" ..."));
            api.put(&format!("/api/vhosts/{}", path(&name)), &json!({}))?;
        }
        Verb::DeleteVhost { name } => {
            println_info(fmt, &format!("Deleting vhost \"{name}\" ..."));
            api.delete(&format!("/api/vhosts/{}", path(&name)))?;
        }
        Verb::ListVhosts { columns } => {
            println_info(fmt, "Listing vhosts ...");
            output::table(
                fmt,
                &api.get("/api/vhosts")?,
                &columns_or(columns, &["name"]),
            );
        }
        Verb::SetPermissions {
            vhost,
            user,
            configure,
            write,
            read,
        } => {
            println_info(
                fmt,
                &format!(
                    "Setting permissions for user \"{user}\" in vhost \"{}\" ...",
                    vhost.vhost
                ),
            );
            let body = json!({"configure": configure, "write": write, "read": read});
            api.put(
                &format!("/api/permissions/{}/{}", path(&vhost.vhost), path(&user)),
                &body,
            )?;
        }
        Verb::ClearPermissions { vhost, user } => {
            println_info(
                fmt,
                &format!(
                    "Clearing permissions for user \"{user}\" in vhost \"{}\" ...",
                    vhost.vhost
                ),
            );
            api.delete(&format!(
                "/api/permissions/{}/{}",
                path(&vhost.vhost),
                path(&user)
            ))?;
        }
        Verb::ListPermissions { vhost } => {
            println_info(
                fmt,
                &format!("Listing permissions for vhost \"{}\" ...", vhost.vhost),
            );
            let rows = api.get(&format!("/api/vhosts/{}/permissions", path(&vhost.vhost)))?;
            let columns = ["user", "configure", "write", "read"].map(String::from);
            output::table(fmt, &rows, &columns);
        }
        Verb::PurgeQueue { vhost, name } => {
            println_info(
                fmt,
                &format!("Purging queue '{name}' in vhost '{}' ...", vhost.vhost),
            );
            api.delete(&format!(
                "/api/queues/{}/{}/contents",
                path(&vhost.vhost),
                path(&name)
            ))?;
        }
        Verb::DeleteQueue { vhost, name } => {
            println_info(
                fmt,
                &format!("Deleting queue '{name}' on vhost '{}' ...", vhost.vhost),
            );
            api.delete(&format!(
                "/api/queues/{}/{}",
                path(&vhost.vhost),
                path(&name)
            ))?;
        }
        Verb::CloseConnection { name, reason } => {
            println_info(
                fmt,
                &format!("Closing connection {name}, reason: {reason}..."),
            );
            api.delete_with_reason(&format!("/api/connections/{}", path(&name)), &reason)?;
        }
        Verb::ExportDefinitions { file } => {
            let definitions = api.get("/api/definitions")?;
            let text = serde_json::to_string_pretty(&definitions).map_err(|e| e.to_string())?;
            if file == "-" {
                println!("{text}");
            } else {
                std::fs::write(&file, text).map_err(|e| format!("cannot write {file}: {e}"))?;
                println_info(
                    fmt,
                    &format!("Exported definitions for virtual hosts to \"{file}\""),
                );
            }
        }
        Verb::ImportDefinitions { file } => {
            let text = if file == "-" {
                std::io::read_to_string(std::io::stdin()).map_err(|e| e.to_string())?
            } else {
                std::fs::read_to_string(&file).map_err(|e| format!("cannot read {file}: {e}"))?
            };
            let definitions: Value =
                serde_json::from_str(&text).map_err(|e| format!("{file} is not JSON: {e}"))?;
            println_info(
                fmt,
                &format!("Importing definitions in JSON from a file at \"{file}\" ..."),
            );
            api.post("/api/definitions", &definitions)?;
        }
        Verb::SetPolicy(args) => policies::set(api, fmt, policies::Kind::Policy, args)?,
        Verb::ClearPolicy(args) => policies::clear(api, fmt, policies::Kind::Policy, args)?,
        Verb::ListPolicies(args) => policies::list(api, fmt, policies::Kind::Policy, args)?,
        Verb::SetOperatorPolicy(args) => policies::set(api, fmt, policies::Kind::Operator, args)?,
        Verb::ClearOperatorPolicy(args) => {
            policies::clear(api, fmt, policies::Kind::Operator, args)?
        }
        Verb::ListOperatorPolicies(args) => {
            policies::list(api, fmt, policies::Kind::Operator, args)?
        }
    }
    Ok(())
}

/// rabbitmqctl's progress line, on the table formatter only (JSON output stays parseable).
pub fn println_info(fmt: Formatter, line: &str) {
    if fmt == Formatter::Table {
        println!("{line}");
    }
}
