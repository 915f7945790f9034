//! The `[cluster]` settings: which node this is, every member's peer address, the shared cookie
//! that peers must present, and Raft's timings. Parsing of `--cluster-peers` lives here too.
//! Nothing here opens a socket.

use std::collections::BTreeMap;

use serde::Deserialize;

/// A static cluster: the same `peers` on every node, each node its own `node`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    /// This node's id (a key of `peers`); 0 = not clustered.
    pub node: u64,
    /// Every member, this node included: id → `HOST:PORT` of its peer listener.
    pub peers: BTreeMap<u64, String>,
    /// A secret every member shares (as RabbitMQ's Erlang cookie): a peer that does not
    /// present it is disconnected before anything else is read from it.
    pub cookie: String,
    /// Raft's heartbeat interval, in ms.
    pub heartbeat_ms: u64,
    /// A follower that hears no leader for a random time in this range starts an election.
    /// Loopback CI machines stall for hundreds of ms: openraft's 150-300 ms would elect
    /// needlessly; 1-2 s keeps a new leader well within the 5 s a failover may take.
    pub election_timeout_min_ms: u64,
    pub election_timeout_max_ms: u64,
    /// How long a declare or other change waits for the metadata group to commit it before it
    /// is refused (a minority side, or no leader).
    pub commit_timeout_ms: u64,
    /// Log entries between two snapshots of a group's state; the log before a snapshot is
    /// purged, keeping `log_kept_behind_snapshot` entries for members a little behind.
    pub snapshot_every: u64,
    pub log_kept_behind_snapshot: u64,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            node: 0,
            peers: BTreeMap::new(),
            cookie: "warren".into(),
            heartbeat_ms: 250,
            election_timeout_min_ms: 1000,
            election_timeout_max_ms: 2000,
            commit_timeout_ms: 10_000,
            snapshot_every: 5_000,
            log_kept_behind_snapshot: 500,
        }
    }
}

impl ClusterConfig {
    pub fn enabled(&self) -> bool {
        self.node != 0
    }

    /// This node's own peer address.
    pub fn own_address(&self) -> Option<&str> {
        self.peers.get(&self.node).map(String::as_str)
    }

    /// Checks what a start needs: the node among the peers, ids above 0, timings that make
    /// sense.
    pub fn validate(&self) -> Result<(), String> {
        if !self.enabled() {
            return Ok(());
        }
        if self.peers.contains_key(&0) {
            return Err("cluster: node ids start at 1".into());
        }
        if self.own_address().is_none() {
            return Err(format!(
                "cluster: node {} is not among the peers ({})",
                self.node,
                self.peers
                    .keys()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if self.heartbeat_ms == 0 || self.election_timeout_min_ms <= self.heartbeat_ms {
            return Err("cluster: the election timeout must be longer than the heartbeat".into());
        }
        if self.snapshot_every == 0 {
            return Err("cluster: snapshot_every must be at least 1".into());
        }
        if self.election_timeout_max_ms <= self.election_timeout_min_ms {
            return Err(
                "cluster: election_timeout_max_ms must exceed election_timeout_min_ms".into(),
            );
        }
        Ok(())
    }
}

/// `--cluster-peers 1=127.0.0.1:25672,2=127.0.0.2:25672,…`.
pub fn parse_peers(text: &str) -> Result<BTreeMap<u64, String>, String> {
    let mut peers = BTreeMap::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (id, address) = part
            .split_once('=')
            .ok_or_else(|| format!("cluster peer '{part}' is not ID=HOST:PORT"))?;
        let id: u64 = id
            .trim()
            .parse()
            .map_err(|_| format!("cluster peer id '{id}' is not a number"))?;
        let address = address.trim();
        if address
            .rsplit_once(':')
            .is_none_or(|(_, port)| port.parse::<u16>().is_err())
        {
            return Err(format!("cluster peer address '{address}' is not HOST:PORT"));
        }
        if peers.insert(id, address.to_string()).is_some() {
            return Err(format!("cluster peer id {id} is given twice"));
        }
    }
    Ok(peers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_parse_and_bad_ones_are_refused_with_a_reason() {
        let peers = parse_peers("1=127.0.0.1:25672, 2=127.0.0.2:25672,3=localhost:1").unwrap();
        assert_eq!(peers.len(), 3);
        assert_eq!(peers[&2], "127.0.0.2:25672");
        assert!(
            parse_peers("1=127.0.0.1")
                .unwrap_err()
                .contains("HOST:PORT")
        );
        assert!(
            parse_peers("x=127.0.0.1:1")
                .unwrap_err()
                .contains("not a number")
        );
        assert!(parse_peers("1=a:1,1=b:2").unwrap_err().contains("twice"));
        let config = ClusterConfig {
            node: 4,
            peers,
            ..ClusterConfig::default()
        };
        assert!(
            config
                .validate()
                .unwrap_err()
                .contains("not among the peers")
        );
    }
}

#[cfg(test)]
mod toml_tests {
    #[test]
    fn the_config_file_names_peers_by_id() {
        let config: crate::Config = toml::from_str(
            "[cluster]\nnode = 2\ncookie = \"c\"\n[cluster.peers]\n1 = \"127.0.0.1:25672\"\n2 = \"127.0.0.2:25672\"\n",
        )
        .expect("parse");
        assert_eq!(config.cluster.node, 2);
        assert_eq!(config.cluster.peers[&1], "127.0.0.1:25672");
        assert!(config.cluster.validate().is_ok());
    }
}
