//! Fanout-exchange bindings: every bound destination gets every message; keys are ignored.

use super::Destination;

#[derive(Default)]
pub struct FanoutBindings {
    dests: Vec<Destination>,
}

impl FanoutBindings {
    pub fn bind(&mut self, dest: Destination) {
        if !self.dests.contains(&dest) {
            self.dests.push(dest);
        }
    }

    pub fn unbind(&mut self, dest: &Destination) {
        self.dests.retain(|d| d != dest);
    }

    pub fn route(&self, out: &mut Vec<Destination>) {
        out.extend(self.dests.iter().cloned());
    }
}
