//! Exchanges: the built-in ones, routing by type, declare/delete semantics,
//! exchange-to-exchange bindings, alternate exchanges and internal exchanges.

mod bindings;
mod declare;
mod routing;
