//! Exchanges: the common interface over the four kinds (one file each), the binding list that
//! gives bindings their identity, and the `alternate-exchange` argument. A delayed-message
//! exchange (`x-delayed-message`) routes as the kind its `x-delayed-type` names and holds a
//! [`Schedule`] for the messages it delays (broker/delayed/).
//!
//! An exchange only answers "which destinations match this message"; following exchange-to-
//! exchange bindings, alternate exchanges and turning names into queues is the vhost's job.
//! It also counts what was published to it ([`ExchangeCounts`]).

mod binding_list;
mod direct;
mod fanout;
pub mod headers;
pub mod topic;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use amq_protocol::types::{AMQPValue, FieldTable};

use crate::broker::delayed::{Schedule, delayed_type};
use crate::broker::message::LazyHeaders;
use crate::broker::policy::Applied;
use parking_lot::RwLock;

use binding_list::BindingList;
use direct::DirectBindings;
use fanout::FanoutBindings;
use headers::HeadersBindings;
use topic::TopicBindings;

/// Where a binding leads.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Destination {
    Queue(Arc<str>),
    Exchange(Arc<str>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExchangeKind {
    Direct,
    Fanout,
    Topic,
    Headers,
    /// `x-delayed-message`: delays what carries an `x-delay` header, routes as its
    /// `x-delayed-type` (broker/delayed/).
    DelayedMessage,
}

impl ExchangeKind {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "direct" => Some(ExchangeKind::Direct),
            "fanout" => Some(ExchangeKind::Fanout),
            "topic" => Some(ExchangeKind::Topic),
            "headers" => Some(ExchangeKind::Headers),
            "x-delayed-message" => Some(ExchangeKind::DelayedMessage),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ExchangeKind::Direct => "direct",
            ExchangeKind::Fanout => "fanout",
            ExchangeKind::Topic => "topic",
            ExchangeKind::Headers => "headers",
            ExchangeKind::DelayedMessage => "x-delayed-message",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Binding {
    pub destination: Destination,
    pub routing_key: String,
    pub arguments: FieldTable,
}

enum Matcher {
    Direct(DirectBindings),
    Fanout(FanoutBindings),
    Topic(TopicBindings<Destination>),
    Headers(HeadersBindings<Destination>),
}

#[derive(Clone, Debug)]
pub struct ExchangeOptions {
    pub kind: ExchangeKind,
    pub durable: bool,
    pub auto_delete: bool,
    pub internal: bool,
    pub arguments: FieldTable,
}

pub struct Exchange {
    pub name: Arc<str>,
    pub options: ExchangeOptions,
    /// How bindings match: the kind, or a delayed exchange's `x-delayed-type`.
    route_kind: ExchangeKind,
    /// A delayed exchange's schedule, attached by its vhost as the exchange is added.
    schedule: OnceLock<Arc<Schedule>>,
    /// The `alternate-exchange` argument (when a string), read once at declare time.
    alternate: Option<Arc<str>>,
    /// The policies that apply (an `alternate-exchange` there counts when the argument is not
    /// given). Read only for messages nothing else routes.
    policy: RwLock<ExchangePolicy>,
    routes: RwLock<Routes>,
    pub counts: ExchangeCounts,
}

/// What an exchange saw, as RabbitMQ counts it for the exchange a client published to
/// (exchanges a message passes through on the way are not counted, nor are dead letters).
#[derive(Debug, Default)]
pub struct ExchangeCounts {
    /// Messages published to it.
    pub publish_in: AtomicU64,
    /// Queue deliveries its publishes made: a message routed to three queues counts three.
    pub publish_out: AtomicU64,
}

impl ExchangeCounts {
    /// One publish that reached `queues` queues. Publishers on several threads count here:
    /// atomic adds, once per message whatever the fan-out.
    pub fn count_publish(&self, queues: usize) {
        self.publish_in.fetch_add(1, Ordering::Relaxed);
        if queues > 0 {
            self.publish_out.fetch_add(queues as u64, Ordering::Relaxed);
        }
    }

    /// Queue deliveries of a message counted as published before (a delayed one, now due).
    pub fn count_routed(&self, queues: usize) {
        if queues > 0 {
            self.publish_out.fetch_add(queues as u64, Ordering::Relaxed);
        }
    }

    /// `(publish_in, publish_out)` now.
    pub fn figures(&self) -> (u64, u64) {
        (
            self.publish_in.load(Ordering::Relaxed),
            self.publish_out.load(Ordering::Relaxed),
        )
    }
}

#[derive(Default)]
struct ExchangePolicy {
    applied: Applied,
    alternate: Option<Arc<str>>,
}

struct Routes {
    /// Every binding with this exchange as source; a binding's identity is the whole triple.
    bindings: BindingList,
    matcher: Matcher,
}

impl Exchange {
    /// A new exchange; a delayed one's `x-delayed-type` was checked by its declaration (one
    /// that does not parse routes as direct).
    pub fn new(name: Arc<str>, options: ExchangeOptions) -> Self {
        let route_kind = match options.kind {
            ExchangeKind::DelayedMessage => {
                delayed_type(&options.arguments).unwrap_or(ExchangeKind::Direct)
            }
            kind => kind,
        };
        let matcher = match route_kind {
            ExchangeKind::Direct | ExchangeKind::DelayedMessage => {
                Matcher::Direct(DirectBindings::default())
            }
            ExchangeKind::Fanout => Matcher::Fanout(FanoutBindings::default()),
            ExchangeKind::Topic => Matcher::Topic(TopicBindings::new()),
            ExchangeKind::Headers => Matcher::Headers(HeadersBindings::new()),
        };
        let alternate = match options.arguments.inner().get("alternate-exchange") {
            Some(AMQPValue::LongString(s)) => {
                Some(Arc::from(String::from_utf8_lossy(s.as_bytes())))
            }
            Some(AMQPValue::ShortString(s)) => Some(Arc::from(s.as_str())),
            _ => None,
        };
        Exchange {
            name,
            options,
            route_kind,
            schedule: OnceLock::new(),
            alternate,
            policy: RwLock::new(ExchangePolicy::default()),
            routes: RwLock::new(Routes {
                bindings: BindingList::default(),
                matcher,
            }),
            counts: ExchangeCounts::default(),
        }
    }

    pub fn kind(&self) -> ExchangeKind {
        self.options.kind
    }

    /// How bindings match messages: the kind, or for a delayed exchange its `x-delayed-type`.
    pub fn route_kind(&self) -> ExchangeKind {
        self.route_kind
    }

    /// A delayed exchange's schedule.
    pub fn schedule(&self) -> Option<&Arc<Schedule>> {
        self.schedule.get()
    }

    /// Gives a delayed exchange its schedule (once; later calls change nothing).
    pub fn attach_schedule(&self, schedule: Arc<Schedule>) {
        let _ = self.schedule.set(schedule);
    }

    /// The `alternate-exchange` argument if it is a string, else the policy's (as RabbitMQ's
    /// `rabbit_policy:get_arg`: the argument wins).
    pub fn alternate_exchange(&self) -> Option<Arc<str>> {
        match &self.alternate {
            Some(own) => Some(own.clone()),
            None => self.policy.read().alternate.clone(),
        }
    }

    /// Applies the policies that now match this exchange.
    pub fn apply_policies(&self, applied: Applied) {
        let alternate = applied.alternate_exchange();
        *self.policy.write() = ExchangePolicy { applied, alternate };
    }

    /// The policies applying to this exchange.
    pub fn applied_policies(&self) -> Applied {
        self.policy.read().applied.clone()
    }

    /// Adds a binding; false if that exact binding already existed.
    pub fn bind(&self, binding: Binding) -> bool {
        let mut routes = self.routes.write();
        if routes.bindings.contains(&binding) {
            return false;
        }
        // Bindings that differ only in arguments route the same way (except for headers).
        if !routes.bindings.routes_like(&binding, self.route_kind) {
            match &mut routes.matcher {
                Matcher::Direct(m) => m.bind(&binding.routing_key, binding.destination.clone()),
                Matcher::Fanout(m) => m.bind(binding.destination.clone()),
                Matcher::Topic(m) => {
                    m.bind(&binding.routing_key, binding.destination.clone());
                }
                Matcher::Headers(m) => {
                    m.bind(&binding.arguments, binding.destination.clone());
                }
            }
        }
        routes.bindings.push(binding);
        true
    }

    /// Removes a binding; false if it did not exist.
    pub fn unbind(&self, binding: &Binding) -> bool {
        let mut routes = self.routes.write();
        let Some(removed) = routes.bindings.remove(binding) else {
            return false;
        };
        if !routes.bindings.routes_like(&removed, self.route_kind) {
            match &mut routes.matcher {
                Matcher::Direct(m) => m.unbind(&removed.routing_key, &removed.destination),
                Matcher::Fanout(m) => m.unbind(&removed.destination),
                Matcher::Topic(m) => {
                    m.unbind(&removed.routing_key, &removed.destination);
                }
                Matcher::Headers(m) => {
                    m.unbind(&removed.arguments, &removed.destination);
                }
            }
        }
        true
    }

    /// Removes every binding to `dest` (the destination was deleted); returns them.
    pub fn unbind_destination(&self, dest: &Destination) -> Vec<Binding> {
        let doomed: Vec<Binding> = self
            .routes
            .read()
            .bindings
            .iter()
            .filter(|b| &b.destination == dest)
            .cloned()
            .collect();
        for b in &doomed {
            self.unbind(b);
        }
        doomed
    }

    /// Whether this exact binding (destination, routing key, arguments) exists.
    pub fn has_binding(&self, binding: &Binding) -> bool {
        self.routes.read().bindings.contains(binding)
    }

    pub fn has_bindings(&self) -> bool {
        !self.routes.read().bindings.is_empty()
    }

    pub fn bindings(&self) -> Vec<Binding> {
        self.routes.read().bindings.to_vec()
    }

    /// Pushes the destinations matching a message (possibly with repeats).
    pub fn route(&self, routing_key: &str, headers: &mut LazyHeaders, out: &mut Vec<Destination>) {
        let routes = self.routes.read();
        match &routes.matcher {
            Matcher::Direct(m) => m.route(routing_key, out),
            Matcher::Fanout(m) => m.route(out),
            Matcher::Topic(m) => m.route(routing_key, out),
            Matcher::Headers(m) => m.route(headers.get(), out),
        }
    }
}
