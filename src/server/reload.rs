//! A reload on a running server (`SIGHUP`, the console's `reload`): the reread settings put
//! in force without dropping anyone. Which settings a reload may change, and saying which
//! ones need a restart, is the caller's (`besedka serve`'s) part; this puts them in place:
//! the configuration every session reads, the per-address and per-user limits, the door's
//! budgets, the thread pool's size, the hub's backlog limits, and each way in's own (a TLS
//! certificate, the metrics token).

use super::config::Config;
use super::hub::Event;
use super::transport::Options;
use super::Server;

impl Server {
    /// Puts `config` and the ways' reloadable options in force. Nothing changes if a way
    /// cannot take its part (a TLS key that does not fit its certificate): the error says
    /// why, and the running settings stay.
    pub fn reconfigure(&self, config: Config, ways: &Options) -> Result<(), String> {
        // The ways first: only they can fail (reading files), and a way that fails changes
        // nothing. Ways are reloaded in their listing order, and before the TLS way only the
        // plain one comes, which takes nothing from a reload.
        for (_, way) in &self.ways {
            way.reload(ways)?;
        }
        self.workers
            .set_max(config.max_clients + config.max_pending);
        self.shared.limits.set_rules(config.limits.clone());
        self.shared.door.set_budget(config.budget());
        let _ = self.shared.hub.send(Event::Backlog {
            max_backlog: config.max_backlog,
            send_timeout: config.send_timeout,
        });
        self.shared.config.replace(config);
        Ok(())
    }
}
