//! Proposing to a group from any member: to this node's own Raft when it leads the group,
//! else over the peer link to the leader it knows of, again and again (a leader changing, none
//! elected yet) until the deadline. The metadata group's changes and quorum queues' batches
//! both go this way.

use std::time::{Duration, Instant};

use openraft::Raft;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::groups::{GroupTypes, propose_here};
use super::messages::{Proposed, Request, Response};
use super::peer_link::Peers;

/// A proposal committed and applied on the leader: its log index and outcome.
pub struct Committed<R> {
    pub index: u64,
    pub outcome: R,
}

/// How long to wait before asking again after a refusal.
const RETRY_AFTER: Duration = Duration::from_millis(20);

/// Proposes `data` to `group` (whose Raft on this node is `raft`) until it is committed or
/// `deadline` passes; the error says what went wrong last.
pub async fn propose_anywhere<C>(
    raft: &Raft<C>,
    peers: &Peers,
    group: u64,
    data: C::D,
    deadline: Instant,
) -> Result<Committed<C::R>, String>
where
    C: GroupTypes,
    C::D: Serialize + DeserializeOwned + Clone,
    C::R: Serialize + DeserializeOwned,
{
    propose_with(
        || raft.metrics().borrow().current_leader,
        |data| propose_here(raft, data),
        peers,
        group,
        &data,
        deadline,
    )
    .await
}

/// The retry loop of [`propose_anywhere`] for a proposal of any form: `leader` says who
/// leads now, `here` proposes on this node when it does; another leader gets `data` over the
/// peer link, where the group's endpoint (groups.rs) takes it.
pub async fn propose_with<T, R, F>(
    leader: impl Fn() -> Option<u64>,
    here: impl Fn(T) -> F,
    peers: &Peers,
    group: u64,
    data: &T,
    deadline: Instant,
) -> Result<Committed<R>, String>
where
    T: Serialize + Clone,
    R: DeserializeOwned,
    F: std::future::Future<Output = Proposed>,
{
    let mut last_problem = String::from("no leader elected");
    // Encoded only if it goes to another node, once.
    let mut body: Option<Vec<u8>> = None;
    while Instant::now() < deadline {
        let left = deadline.saturating_duration_since(Instant::now());
        let proposed = match leader() {
            None => None,
            // A leader cut off from the others never commits: bounded here.
            Some(leader) if leader == peers.me() => Some(
                tokio::time::timeout(left, here(data.clone()))
                    .await
                    .unwrap_or_else(|_| Proposed::Failed("no majority answered the leader".into())),
            ),
            Some(leader) => {
                let body = match &body {
                    Some(body) => body.clone(),
                    None => {
                        let encoded = postcard::to_stdvec(data).map_err(|e| e.to_string())?;
                        body.insert(encoded).clone()
                    }
                };
                let request = Request::Propose { group, body };
                match peers.call(leader, request, left).await {
                    Ok(Response::Propose(p)) => Some(p),
                    Ok(Response::Refused(why)) => Some(Proposed::Failed(why)),
                    Ok(other) => Some(Proposed::Failed(format!("unexpected answer {other:?}"))),
                    Err(e) => Some(Proposed::Failed(e.to_string())),
                }
            }
        };
        match proposed {
            Some(Proposed::Applied { index, outcome }) => {
                let outcome = postcard::from_bytes(&outcome)
                    .map_err(|e| format!("an outcome unread: {e}"))?;
                return Ok(Committed { index, outcome });
            }
            Some(Proposed::NotLeader { .. }) => last_problem = "the leader changed".into(),
            Some(Proposed::Failed(e)) => last_problem = e,
            None => {}
        }
        tokio::time::sleep(RETRY_AFTER).await;
    }
    Err(last_problem)
}
