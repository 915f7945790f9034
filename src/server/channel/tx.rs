//! Transactions (tx.select / commit / rollback): publishes and acknowledgements made inside a
//! transaction take effect at commit, or never.

use amq_protocol::protocol::{AMQPClass, tx};
use warren_protocol::AmqpError;

use super::shared::{Settlement, TX_COMMIT_TOKEN, Unacked};
use super::{Channel, ChannelContext};
use crate::broker::publish::CheckedPublish;
use warren_protocol::method::{self, MethodId};

#[derive(Default)]
pub struct Transaction {
    /// Publishes already checked (a refused one closed the channel when it arrived).
    pub publishes: Vec<CheckedPublish>,
    /// Deliveries already taken out of the unacked list, settled at commit.
    pub settlements: Vec<(Vec<Unacked>, Settlement)>,
}

fn not_transactional(method: MethodId) -> AmqpError {
    AmqpError::precondition("channel is not transactional").on_method(method)
}

impl Channel {
    pub(super) fn tx_select(&mut self, ctx: &mut ChannelContext) -> Result<(), AmqpError> {
        if self.confirm_mode {
            return Err(
                AmqpError::precondition("cannot switch from confirm to tx mode")
                    .on_method(method::TX_SELECT),
            );
        }
        if self.tx.is_none() {
            self.tx = Some(Transaction::default());
            self.shared.settings.set_transactional();
        }
        self.reply(
            ctx,
            AMQPClass::Tx(tx::AMQPMethod::SelectOk(tx::SelectOk {})),
        );
        Ok(())
    }

    pub(super) fn tx_commit(&mut self, ctx: &mut ChannelContext) -> Result<(), AmqpError> {
        let Some(work) = self.tx.replace(Transaction::default()) else {
            return Err(not_transactional(method::TX_COMMIT));
        };
        let ticket = self.commit_publishes(work.publishes, ctx);
        for (entries, how) in work.settlements {
            self.shared.settle(entries, how);
        }
        match ticket {
            // commit-ok only once the transaction's persistent messages are on disk.
            Some(ticket) => ticket.when_committed(self.shared.clone(), TX_COMMIT_TOKEN),
            None => self.reply(
                ctx,
                AMQPClass::Tx(tx::AMQPMethod::CommitOk(tx::CommitOk {})),
            ),
        }
        Ok(())
    }

    pub(super) fn tx_rollback(&mut self, ctx: &mut ChannelContext) -> Result<(), AmqpError> {
        let Some(work) = self.tx.replace(Transaction::default()) else {
            return Err(not_transactional(method::TX_ROLLBACK));
        };
        // Acks made in the transaction are undone: those deliveries are outstanding again.
        for (entries, _) in work.settlements {
            self.shared.restore_unacked(entries);
        }
        self.reply(
            ctx,
            AMQPClass::Tx(tx::AMQPMethod::RollbackOk(tx::RollbackOk {})),
        );
        Ok(())
    }
}
