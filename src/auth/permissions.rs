//! Permissions as RabbitMQ's internal backend checks them: per user and vhost, three regular
//! expressions (configure, write, read) matched anywhere in a resource's name (an empty one
//! matches nothing); and per user, vhost and topic exchange, write and read expressions over
//! routing keys, with `{username}` and `{vhost}` substituted first. Topic permissions only
//! restrict: with none for an exchange, every routing key is allowed.
//!
//! The expressions are PCRE in RabbitMQ (Erlang's `re`), and deployments use its look-around,
//! e.g. `^(?!amq\.).*` for "everything but amq.*": fancy-regex compiles those (and hands plain
//! expressions to the `regex` engine), so a definitions file RabbitMQ takes is taken here.
//!
//! Owns patterns and matching; which user has which permissions is [`super::registry`].

use fancy_regex::Regex;

/// What an operation needs on a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Access {
    Configure,
    Write,
    Read,
}

/// The kinds of resource permissions name (RabbitMQ's `#resource.kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResourceKind {
    Queue,
    Exchange,
}

impl ResourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceKind::Queue => "queue",
            ResourceKind::Exchange => "exchange",
        }
    }
}

/// `.*`, compiled once: nearly every user has it three times per vhost, and compiling an
/// expression takes tens of microseconds (a clone shares the compiled program).
fn everything() -> &'static Regex {
    static EVERYTHING: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
    EVERYTHING.get_or_init(|| Regex::new(".*").expect("`.*` is a valid expression"))
}

/// One permission expression, as given and compiled.
#[derive(Debug, Clone)]
pub struct Pattern {
    source: String,
    regex: Regex,
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Pattern {
    /// Compiles `source`; an empty expression is RabbitMQ's "nothing" (`^$`).
    pub fn new(source: &str) -> Result<Pattern, String> {
        let effective = if source.is_empty() { "^$" } else { source };
        let regex = if effective == ".*" {
            everything().clone()
        } else {
            Regex::new(effective)
                .map_err(|e| format!("invalid regular expression '{source}': {e}"))?
        };
        Ok(Pattern {
            source: source.to_string(),
            regex,
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// True for the expressions that match every name (`.*` and its anchored spellings): most
    /// users have them, and a channel then needs no check at all.
    pub fn matches_everything(&self) -> bool {
        matches!(self.source.as_str(), ".*" | "^.*" | ".*$" | "^.*$")
    }

    /// An expression that gives up (fancy-regex's backtracking limit) matches nothing: the
    /// check refuses, it never panics.
    pub fn matches(&self, name: &str) -> bool {
        self.regex.is_match(name).unwrap_or(false)
    }
}

/// A user's configure, write and read expressions in one vhost.
#[derive(Debug, Clone, PartialEq)]
pub struct Permissions {
    pub configure: Pattern,
    pub write: Pattern,
    pub read: Pattern,
}

impl Permissions {
    pub fn new(configure: &str, write: &str, read: &str) -> Result<Permissions, String> {
        Ok(Permissions {
            configure: Pattern::new(configure)?,
            write: Pattern::new(write)?,
            read: Pattern::new(read)?,
        })
    }

    /// `.*` for all three: what the default user gets.
    pub fn all() -> Permissions {
        // A constant expression: it compiles.
        Permissions::new(".*", ".*", ".*").unwrap_or_else(|_| unreachable!())
    }

    /// Per access (configure, write, read): does the expression match every name?
    pub fn unrestricted(&self) -> [bool; 3] {
        [
            self.configure.matches_everything(),
            self.write.matches_everything(),
            self.read.matches_everything(),
        ]
    }

    pub fn allows(&self, access: Access, name: &str) -> bool {
        let pattern = match access {
            Access::Configure => &self.configure,
            Access::Write => &self.write,
            Access::Read => &self.read,
        };
        pattern.matches(name)
    }
}

/// A user's routing-key expressions on one topic exchange in one vhost. They may name
/// `{username}` and `{vhost}`, substituted at each check, so they are kept as text and
/// compiled when checked (topic permissions are rare, and a channel remembers the answer).
#[derive(Debug, Clone, PartialEq)]
pub struct TopicPermission {
    pub exchange: String,
    pub write: String,
    pub read: String,
}

impl TopicPermission {
    /// Refuses expressions that are invalid even with the placeholders filled in.
    pub fn new(exchange: &str, write: &str, read: &str) -> Result<TopicPermission, String> {
        for source in [write, read] {
            Pattern::new(&expand(source, "user", "vhost"))?;
        }
        Ok(TopicPermission {
            exchange: exchange.to_string(),
            write: write.to_string(),
            read: read.to_string(),
        })
    }

    /// Whether `routing_key` may be published (write) or bound (read), after substituting
    /// `{username}` and `{vhost}` into the expression as RabbitMQ does.
    pub fn allows(&self, access: Access, routing_key: &str, user: &str, vhost: &str) -> bool {
        let source = match access {
            Access::Write => &self.write,
            Access::Read | Access::Configure => &self.read,
        };
        // A substituted name can make the expression invalid; that refuses, it never panics.
        Pattern::new(&expand(source, user, vhost)).is_ok_and(|p| p.matches(routing_key))
    }
}

fn expand(source: &str, user: &str, vhost: &str) -> String {
    source.replace("{username}", user).replace("{vhost}", vhost)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expressions_match_anywhere_and_empty_matches_nothing() {
        let p = Permissions::new("^amq\\.gen", "", "q").unwrap();
        assert!(p.allows(Access::Configure, "amq.gen-123"));
        assert!(!p.allows(Access::Configure, "x.amq.gen"));
        assert!(!p.allows(Access::Write, "anything"));
        // As RabbitMQ: "" is `^$`, which only an empty name matches (none has one: the default
        // exchange is checked as `amq.default`).
        assert!(p.allows(Access::Write, ""));
        assert!(
            p.allows(Access::Read, "myqueue"),
            "unanchored: matches inside"
        );
        assert!(Permissions::new("(", ".*", ".*").is_err());
        assert_eq!(
            Permissions::new(".*", "^.*$", "^q").unwrap().unrestricted(),
            [true, true, false]
        );
    }

    #[test]
    fn look_around_is_supported_as_in_rabbitmq() {
        // RabbitMQ's expressions are PCRE: "everything but amq.*" is a common one.
        let p = Permissions::new("^(?!amq\\.).*", "^(?!amq\\.)(?!tmp-)", "(?<!\\.bak)$").unwrap();
        assert!(p.allows(Access::Configure, "orders"));
        assert!(!p.allows(Access::Configure, "amq.gen-x"));
        assert!(!p.allows(Access::Write, "amq.default"));
        assert!(!p.allows(Access::Write, "tmp-q"));
        assert!(p.allows(Access::Write, "q-tmp"));
        assert!(p.allows(Access::Read, "orders"));
        assert!(!p.allows(Access::Read, "orders.bak"));
        let t = TopicPermission::new("amq.topic", "^(?!{username}\\.secret)", ".*").unwrap();
        assert!(t.allows(Access::Write, "alice.orders", "alice", "v"));
        assert!(!t.allows(Access::Write, "alice.secret.x", "alice", "v"));
    }

    #[test]
    fn topic_expressions_substitute_user_and_vhost() {
        let t = TopicPermission::new("amq.topic", "^{username}\\.", "^{vhost}-").unwrap();
        assert!(t.allows(Access::Write, "alice.orders", "alice", "prod"));
        assert!(!t.allows(Access::Write, "bob.orders", "alice", "prod"));
        assert!(t.allows(Access::Read, "prod-x", "alice", "prod"));
        // A user name that is not a valid expression refuses instead of panicking.
        assert!(!t.allows(Access::Write, "x", "(", "prod"));
    }
}
