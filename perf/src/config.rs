//! Command-line configuration (clap) and the parsing of its compound values: the AMQP URI,
//! `--queue-args` / `--queue-type`, `--exchange-args`, `--consumer-args` / `--stream-offset`,
//! `--delays`, and the queue names a run uses. Short options follow RabbitMQ PerfTest's
//! where they do not clash with clap's own (`-h` is help here, so the URI is `--uri` only).

use amq_protocol::types::{AMQPValue, FieldTable, LongString, ShortString};
use clap::Parser;

use crate::Error;
use crate::delay::DelayMode;

#[derive(Parser, Debug, Clone)]
#[command(
    name = "warren-perf",
    version,
    about = "AMQP 0-9-1 load generator (PerfTest-style) with its own lean client"
)]
pub struct Config {
    /// amqp://user:pass@host:port/vhost (user, password and vhost percent-encoded).
    #[arg(long, default_value = "amqp://guest:guest@127.0.0.1:5672/%2f")]
    pub uri: String,
    /// Number of producers (one connection each).
    #[arg(short = 'x', long, default_value_t = 1)]
    pub producers: usize,
    /// Number of consumers (one connection each).
    #[arg(short = 'y', long, default_value_t = 1)]
    pub consumers: usize,
    /// Queue name (default "warren-perf" when no --queue-pattern is given).
    #[arg(short = 'u', long, conflicts_with = "queue_pattern")]
    pub queue: Option<String>,
    /// Queue name pattern with one `%d`, e.g. 'perf-%d'; numbered 1..=--queues.
    #[arg(long)]
    pub queue_pattern: Option<String>,
    /// Number of queues made from --queue-pattern; clients are spread round-robin over them.
    #[arg(long, default_value_t = 1, requires = "queue_pattern")]
    pub queues: usize,
    /// Queue arguments, `k=v,k2=v2`: integers become long-long ints, true/false booleans,
    /// anything else a long string (e.g. x-queue-type=quorum,x-max-length=1000).
    #[arg(long)]
    pub queue_args: Option<String>,
    /// Shorthand for the queue argument x-queue-type (classic, quorum, stream). RabbitMQ only
    /// declares a stream with --durable and without --auto-delete.
    #[arg(long)]
    pub queue_type: Option<String>,
    /// Declare queues (and the exchange) durable.
    #[arg(long)]
    pub durable: bool,
    /// Declare queues auto-delete.
    #[arg(long)]
    pub auto_delete: bool,
    /// Exchange to publish to (default: the default exchange, routing key = queue name).
    #[arg(short = 'e', long)]
    pub exchange: Option<String>,
    /// Exchange type when --exchange is declared (x-delayed-message: a delayed-message
    /// exchange, declared with x-delayed-type=direct unless --exchange-args names another).
    #[arg(short = 't', long, default_value = "direct")]
    pub exchange_type: String,
    /// Exchange arguments when --exchange is declared, `k=v,k2=v2`, typed as in --queue-args
    /// (e.g. x-delayed-type=topic).
    #[arg(long)]
    pub exchange_args: Option<String>,
    /// Routing key for publishes and bindings (default: the queue name).
    #[arg(short = 'k', long)]
    pub routing_key: Option<String>,
    /// Message body size in bytes (at least 16: send timestamp + sequence number).
    #[arg(short = 's', long, default_value_t = 16)]
    pub size: usize,
    /// Publish with delivery-mode 2 (persistent).
    #[arg(short = 'f', long)]
    pub persistent: bool,
    /// Set the `priority` property, cycling 0..N-1 message by message (each producer's
    /// message k gets k mod N); 0 = no priority property. For a queue with x-max-priority.
    #[arg(long, default_value_t = 0)]
    pub priorities: u8,
    /// Set the `expiration` property (per-message TTL) to MS milliseconds.
    #[arg(long, value_name = "MS")]
    pub expiration: Option<String>,
    /// Delayed messages: delays in ms, `MS[,MS...]`; each producer's message number k gets the
    /// (k mod n)-th (round-robin, repeats allowed to weight a delay). The body carries the send
    /// time and the delay (--size 24 or more), and consumers report lateness = receive time -
    /// (send time + delay) and the messages delivered more than 1 ms early. With consumers, the
    /// run waits the longest delay (then one idle second) after the last publish. See
    /// --delay-mode.
    #[arg(long, value_name = "MS[,MS...]")]
    pub delays: Option<String>,
    /// How --delays are delayed. header (default): header x-delay=<ms> (long-long int) on
    /// publishes to --exchange, an x-delayed-message exchange. ttl-queues (for a broker without
    /// the plugin): for each distinct delay D a holding queue `<queue>.delay.<D>` (durable as
    /// the queue, x-message-ttl=D, x-dead-letter-exchange="", x-dead-letter-routing-key=<queue>)
    /// is declared, and publishes go to the default exchange with routing key
    /// `<queue>.delay.<D>`; consumers consume <queue>.
    #[arg(long, value_enum, value_name = "MODE", requires = "delays")]
    pub delay_mode: Option<DelayMode>,
    /// Publisher confirms with at most N unconfirmed messages per producer (0 = off).
    #[arg(short = 'c', long, default_value_t = 0)]
    pub confirm: u32,
    /// Consumer prefetch (basic.qos), 0 = unlimited.
    #[arg(short = 'q', long, default_value_t = 0)]
    pub prefetch: u16,
    /// Consume with no-ack (auto-ack).
    #[arg(short = 'a', long)]
    pub auto_ack: bool,
    /// Manual ack with multiple=true every N messages (1 = ack each message).
    #[arg(short = 'A', long, default_value_t = 1)]
    pub multi_ack_every: u32,
    /// Poll with basic.get instead of basic.consume.
    #[arg(long)]
    pub get: bool,
    /// basic.consume arguments, `k=v,k2=v2`, typed as in --queue-args (e.g. x-priority=5).
    #[arg(long, conflicts_with = "get")]
    pub consumer_args: Option<String>,
    /// Where stream consumers start (consumer argument x-stream-offset): first, last, next, an
    /// offset (a number), a point in time `@<unix seconds>`, or an interval such as 1h or 7D.
    /// RabbitMQ wants manual acks and a --prefetch for stream consumers.
    #[arg(long, conflicts_with = "get")]
    pub stream_offset: Option<String>,
    /// Publishing rate limit per producer in messages per second (0 = unlimited).
    #[arg(short = 'r', long, default_value_t = 0.0)]
    pub rate: f64,
    /// Run time in seconds (0 = until the message counts are reached or Ctrl-C).
    #[arg(short = 'z', long, default_value_t = 0)]
    pub time: u64,
    /// Messages per producer (0 = unlimited).
    #[arg(short = 'C', long, default_value_t = 0)]
    pub pmessages: u64,
    /// Messages per consumer (0 = unlimited); each consumer stops once it has this many.
    #[arg(
        short = 'D',
        long,
        visible_alias = "consume-count",
        default_value_t = 0
    )]
    pub cmessages: u64,
    /// Do not declare queues, exchanges or bindings: they exist already.
    #[arg(short = 'p', long)]
    pub predeclared: bool,
    /// Print the final summary as one JSON object on stdout (per-second lines go to stderr).
    #[arg(long)]
    pub json: bool,
    /// Run against an in-process fake broker that discards publishes: the tool's own ceiling.
    #[arg(long)]
    pub sink: bool,
    /// No per-second lines (the summary is still printed).
    #[arg(long)]
    pub quiet: bool,
    /// Idle-connections mode: open N connections with --idle-channels channels each (default
    /// one), hold them for --hold seconds, close them; no publishing or consuming (for measuring
    /// the broker's memory per connection).
    #[arg(long, default_value_t = 0)]
    pub idle_connections: usize,
    /// Channels per idle connection (--idle-connections): each opens channels 1..=K, one
    /// channel.open after the other, before it counts as open. JSON summary:
    /// channels_per_connection.
    #[arg(
        long,
        value_name = "K",
        default_value_t = 1,
        value_parser = clap::value_parser!(u16).range(1..)
    )]
    pub idle_channels: u16,
    /// Seconds to hold the idle connections once all are open.
    #[arg(long, default_value_t = 10.0)]
    pub hold: f64,
    /// Declare-queues mode: one connection declares N queues named by --queue-pattern with
    /// indexes 0..N-1 (default pattern bench-s1-%d), durable with --durable, with --queue-args,
    /// pipelined over --declare-channels channels, then exits and leaves them in place; no
    /// publishing or consuming (for measuring the broker with many queues). JSON summary:
    /// mode, requested, declared, declare_secs, declare_rate, errors.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 0,
        conflicts_with_all = ["idle_connections", "sink"]
    )]
    pub declare_queues: usize,
    /// Bind the one queue (--queue) to the topic exchange (--exchange X --exchange-type topic)
    /// with N distinct patterns before producers start, pipelined over --declare-channels
    /// channels; producers then publish round-robin with N routing keys, each routed by
    /// exactly one binding. Binding i is s2.{i}.*.x (key s2.{i}.a.x), s2.{i}.# (key
    /// s2.{i}.b.c) or *.{i}.y (key s2.{i}.y) by i mod 3. With --predeclared the bindings must
    /// exist already. JSON summary: bindings, bind_secs, bind_rate.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 0,
        conflicts_with_all = ["routing_key", "declare_queues"]
    )]
    pub topic_bindings: usize,
    /// Channels that --declare-queues and --topic-bindings pipeline their methods over, each
    /// with at most 64 unanswered.
    #[arg(
        long,
        value_name = "C",
        default_value_t = 8,
        value_parser = clap::value_parser!(u16).range(1..)
    )]
    pub declare_channels: u16,
}

impl Config {
    /// Parses a command line (first item = program name), as the binary does.
    pub fn from_args<I, T>(args: I) -> Result<Config, Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        Config::try_parse_from(args).map_err(|e| Error(e.to_string()))
    }

    pub fn validate(&self) -> Result<(), Error> {
        if self.size < 16 {
            return Err(Error::msg(
                "--size must be at least 16 (timestamp + sequence)",
            ));
        }
        if let Some(p) = &self.queue_pattern
            && !p.contains("%d")
        {
            return Err(Error::msg("--queue-pattern must contain %d"));
        }
        if self.queues == 0 {
            return Err(Error::msg("--queues must be at least 1"));
        }
        if !(self.rate >= 0.0 && self.rate.is_finite()) {
            return Err(Error::msg("--rate must be a non-negative number"));
        }
        if !(self.hold >= 0.0 && self.hold.is_finite()) {
            return Err(Error::msg("--hold must be a non-negative number"));
        }
        if let Some(e) = &self.expiration
            && (e.is_empty() || !e.bytes().all(|b| b.is_ascii_digit()) || e.parse::<u64>().is_err())
        {
            return Err(Error(format!(
                "--expiration must be a number of milliseconds, not '{e}'"
            )));
        }
        if self.multi_ack_every == 0 {
            return Err(Error::msg("--multi-ack-every must be at least 1"));
        }
        for q in self.queue_names() {
            short_str(&q)?;
        }
        self.queue_arguments()?;
        self.exchange_arguments()?;
        self.consumer_arguments()?;
        crate::declare::validate(self)?;
        crate::bindings::validate(self)?;
        self.validate_delays()
    }

    /// `--exchange-args`; an x-delayed-message exchange gets x-delayed-type=direct unless the
    /// list names one.
    pub fn exchange_arguments(&self) -> Result<FieldTable, Error> {
        let mut table = parse_table("--exchange-args", self.exchange_args.as_deref())?;
        if self.exchange_type == "x-delayed-message"
            && !table.inner().contains_key("x-delayed-type")
        {
            table.insert(short_str("x-delayed-type")?, long_string("direct"));
        }
        Ok(table)
    }

    pub fn queue_names(&self) -> Vec<String> {
        match &self.queue_pattern {
            Some(p) => (1..=self.queues)
                .map(|i| p.replacen("%d", &i.to_string(), 1))
                .collect(),
            None => vec![self.queue.clone().unwrap_or_else(|| "warren-perf".into())],
        }
    }

    /// `--queue-args`, with `--queue-type` as x-queue-type (which wins over one in the list).
    pub fn queue_arguments(&self) -> Result<FieldTable, Error> {
        let mut table = parse_table("--queue-args", self.queue_args.as_deref())?;
        if let Some(t) = &self.queue_type {
            table.insert(short_str("x-queue-type")?, long_string(t));
        }
        Ok(table)
    }

    /// `--consumer-args`, with `--stream-offset` as x-stream-offset (which wins).
    pub fn consumer_arguments(&self) -> Result<FieldTable, Error> {
        let mut table = parse_table("--consumer-args", self.consumer_args.as_deref())?;
        if let Some(o) = &self.stream_offset {
            table.insert(short_str("x-stream-offset")?, stream_offset(o)?);
        }
        Ok(table)
    }
}

/// A `k=v,k2=v2` list: integers become long-long ints, true/false booleans, anything else a
/// long string.
fn parse_table(flag: &str, spec: Option<&str>) -> Result<FieldTable, Error> {
    let mut table = FieldTable::default();
    let Some(spec) = spec else {
        return Ok(table);
    };
    for pair in spec.split(',').filter(|p| !p.trim().is_empty()) {
        let (k, v) = pair
            .split_once('=')
            .ok_or_else(|| Error(format!("{flag}: '{pair}' is not k=v")))?;
        let (k, v) = (k.trim(), v.trim());
        let value = if let Ok(i) = v.parse::<i64>() {
            AMQPValue::LongLongInt(i)
        } else if v == "true" || v == "false" {
            AMQPValue::Boolean(v == "true")
        } else {
            long_string(v)
        };
        table.insert(short_str(k)?, value);
    }
    Ok(table)
}

fn long_string(s: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(s.as_bytes().to_vec()))
}

/// The value of x-stream-offset as RabbitMQ reads it: a number is an offset (long-long int),
/// `@<seconds>` a timestamp, anything else a string (first, last, next, or an interval).
pub fn stream_offset(s: &str) -> Result<AMQPValue, Error> {
    let s = s.trim();
    if let Ok(n) = s.parse::<i64>() {
        if n < 0 {
            return Err(Error(format!("--stream-offset: {n} is negative")));
        }
        return Ok(AMQPValue::LongLongInt(n));
    }
    if let Some(t) = s.strip_prefix('@') {
        let secs = t
            .parse::<u64>()
            .map_err(|_| Error(format!("--stream-offset: '{s}' is not @<unix seconds>")))?;
        return Ok(AMQPValue::Timestamp(secs));
    }
    if s.is_empty() {
        return Err(Error::msg("--stream-offset is empty"));
    }
    Ok(long_string(s))
}

/// A user-supplied name as an AMQP short string (at most 255 bytes).
pub fn short_str(s: &str) -> Result<ShortString, Error> {
    ShortString::try_new(s).map_err(|_| Error(format!("'{s}' is longer than 255 bytes")))
}

/// A parsed `amqp://` URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uri {
    pub user: String,
    pub password: String,
    pub host: String,
    pub port: u16,
    pub vhost: String,
}

impl Uri {
    pub fn addr(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

pub fn parse_uri(uri: &str) -> Result<Uri, Error> {
    let bad = |why: &str| Error(format!("bad URI '{uri}': {why}"));
    let rest = uri
        .strip_prefix("amqp://")
        .ok_or_else(|| bad("only amqp:// is supported"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    let (userinfo, hostport) = match authority.rfind('@') {
        Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
        None => (None, authority),
    };
    let (user, password) = match userinfo {
        Some(ui) => match ui.split_once(':') {
            Some((u, p)) => (percent_decode(u)?, percent_decode(p)?),
            None => (percent_decode(ui)?, String::new()),
        },
        None => ("guest".into(), "guest".into()),
    };
    let (host, port) = if let Some(h) = hostport.strip_prefix('[') {
        let (h, after) = h.split_once(']').ok_or_else(|| bad("unclosed '['"))?;
        (h.to_string(), after.strip_prefix(':'))
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (hostport.to_string(), None),
        }
    };
    let port = match port {
        Some(p) if !p.is_empty() => p.parse().map_err(|_| bad("bad port"))?,
        _ => 5672,
    };
    let host = if host.is_empty() {
        "localhost".into()
    } else {
        host
    };
    // No path means the default vhost "/", as in RabbitMQ's URI spec.
    let vhost = match path {
        None | Some("") => "/".to_string(),
        Some(p) => percent_decode(p)?,
    };
    Ok(Uri {
        user,
        password,
        host,
        port,
        vhost,
    })
}

fn percent_decode(s: &str) -> Result<String, Error> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| Error(format!("bad percent-encoding in '{s}'")))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| Error(format!("'{s}' is not UTF-8 once decoded")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_parts_and_defaults() {
        let u = parse_uri("amqp://guest:guest@127.0.0.1:5672/%2f").unwrap();
        assert_eq!(
            (u.user.as_str(), u.port, u.vhost.as_str()),
            ("guest", 5672, "/")
        );
        let u = parse_uri("amqp://a%40b:p@host/v1").unwrap();
        assert_eq!(
            (u.user.as_str(), u.host.as_str(), u.vhost.as_str()),
            ("a@b", "host", "v1")
        );
        let u = parse_uri("amqp://[::1]:5673").unwrap();
        assert_eq!((u.addr().as_str(), u.vhost.as_str()), ("[::1]:5673", "/"));
        assert!(parse_uri("amqps://h").is_err());
        assert!(parse_uri("amqp://h:x").is_err());
    }

    #[test]
    fn queue_args_types_and_names() {
        let c = Config::from_args([
            "p",
            "--queue-pattern",
            "q-%d",
            "--queues",
            "3",
            "--queue-args",
            "x-max-length=10,x-queue-type=quorum,x-single-active-consumer=true",
        ])
        .unwrap();
        assert_eq!(c.queue_names(), vec!["q-1", "q-2", "q-3"]);
        let t = c.queue_arguments().unwrap();
        let inner = t.inner();
        assert_eq!(inner.get("x-max-length"), Some(&AMQPValue::LongLongInt(10)));
        assert_eq!(
            inner.get("x-single-active-consumer"),
            Some(&AMQPValue::Boolean(true))
        );
        assert!(matches!(
            inner.get("x-queue-type"),
            Some(AMQPValue::LongString(_))
        ));
        assert!(
            Config::from_args(["p", "--size", "8"])
                .unwrap()
                .validate()
                .is_err()
        );
    }

    #[test]
    fn priorities_and_expiration() {
        let c = Config::from_args(["p", "--priorities", "10", "--expiration", "3600000"]).unwrap();
        c.validate().unwrap();
        assert_eq!(
            (c.priorities, c.expiration.as_deref()),
            (10, Some("3600000"))
        );
        let none = Config::from_args(["p"]).unwrap();
        assert_eq!((none.priorities, none.expiration), (0, None));
        assert!(Config::from_args(["p", "--priorities", "256"]).is_err());
        for bad in ["", "-1", "1h", "1.5", "99999999999999999999999"] {
            let c = Config::from_args(["p", &format!("--expiration={bad}")]).unwrap();
            assert!(c.validate().is_err(), "--expiration {bad:?}");
        }
    }

    #[test]
    fn queue_type_and_stream_offset() {
        let c = Config::from_args([
            "p",
            "--queue-type",
            "stream",
            "--queue-args",
            "x-queue-type=quorum,x-max-length-bytes=1000",
            "--consumer-args",
            "x-priority=3,x-stream-offset=last",
            "--stream-offset",
            "first",
            "--consume-count",
            "7",
        ])
        .unwrap();
        c.validate().unwrap();
        let q = c.queue_arguments().unwrap();
        let text = |s: &str| AMQPValue::LongString(LongString::from(s.as_bytes().to_vec()));
        assert_eq!(q.inner().get("x-queue-type"), Some(&text("stream")));
        assert_eq!(
            q.inner().get("x-max-length-bytes"),
            Some(&AMQPValue::LongLongInt(1000))
        );
        let a = c.consumer_arguments().unwrap();
        assert_eq!(a.inner().get("x-stream-offset"), Some(&text("first")));
        assert_eq!(
            a.inner().get("x-priority"),
            Some(&AMQPValue::LongLongInt(3))
        );
        assert_eq!(c.cmessages, 7);

        assert_eq!(stream_offset("42").unwrap(), AMQPValue::LongLongInt(42));
        assert_eq!(
            stream_offset("@1700000000").unwrap(),
            AMQPValue::Timestamp(1_700_000_000)
        );
        assert_eq!(stream_offset("1h").unwrap(), text("1h"));
        assert!(stream_offset("-1").is_err());
        assert!(stream_offset("@soon").is_err());
        assert!(Config::from_args(["p", "--get", "--stream-offset", "first"]).is_err());
        let none = Config::from_args(["p"]).unwrap();
        assert!(none.consumer_arguments().unwrap().inner().is_empty());
    }
}
