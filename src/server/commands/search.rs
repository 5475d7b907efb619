//! `/search [-c N] WORDS [from:NAME] [in:#ROOM] [before:DATE] [after:DATE]`: the newest lines
//! the user may see that match. A search is bounded three ways: it stops at
//! [`SEARCH_SHOWN`] hits (the store walks the matches newest first), it costs
//! [`SEARCH_COST`] lines of the user's rate, and only one of a user's searches and
//! [`AT_ONCE`] of the server's run at once.

use crate::server::protocol::{clean, found_in_context, found_lines};
use crate::server::searches::{Busy, AT_ONCE};
use crate::server::session::{End, Flow, Session};
use crate::server::text;
use crate::store::search::{self as store_search, Query, MAX_CONTEXT};

/// Lines `/search` shows at most.
pub const SEARCH_SHOWN: u32 = 20;

/// What a search costs of the user's rate (`--max-rate`), in lines, its own line included:
/// at the default 20 lines a second, one search a second, and a user who floods searches
/// slows only their own next lines.
pub const SEARCH_COST: u32 = 20;

/// `-c N` in front of the query: how many lines to show around each hit, and the rest.
fn context_flag(args: &str) -> Result<(Option<u32>, &str), ()> {
    let Some(rest) = args.strip_prefix("-c") else {
        return Ok((None, args));
    };
    let rest = rest.trim_start();
    let (n, rest) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    match n.parse::<u32>() {
        Ok(n) if n <= MAX_CONTEXT => Ok((Some(n), rest.trim_start())),
        _ => Err(()),
    }
}

pub fn search(s: &mut Session, args: &str) -> Result<Flow, End> {
    let Some(user_id) = s.login.as_ref().map(|l| l.user.id) else {
        return Ok(Flow::Continue);
    };
    let Ok((context, rest)) = context_flag(args) else {
        s.send(&text::search_context_usage(MAX_CONTEXT));
        return Ok(Flow::Continue);
    };
    let query = match Query::parse(rest) {
        Ok(q) => q,
        // The reason is the server's words, but may quote what was typed.
        Err(why) => {
            s.send(&text::not_a_query(&clean(&why)));
            return Ok(Flow::Continue);
        }
    };
    let _running = match s.shared.searches.begin(user_id) {
        Ok(permit) => permit,
        Err(Busy::User) => {
            s.send(&text::search_busy_user());
            return Ok(Flow::Continue);
        }
        Err(Busy::Server) => {
            s.send(&text::search_busy_server(AT_ONCE));
            return Ok(Flow::Continue);
        }
    };
    // The line itself was paced as one line already.
    s.charge(SEARCH_COST - 1);
    let found = s.shared.store.conn().and_then(|c| {
        let mut hits = store_search::search(&c, Some(user_id), &query, SEARCH_SHOWN)?;
        hits.reverse();
        let groups = match context {
            Some(n) if n > 0 => hits
                .iter()
                .map(|hit| store_search::context(&c, hit, n))
                .collect::<crate::error::Result<Vec<_>>>()?,
            _ => Vec::new(),
        };
        Ok((hits, groups))
    });
    let budget = s.shared.config.get().max_backlog / 2;
    match found {
        Ok((hits, groups)) if !groups.is_empty() => {
            let mut out = text::search_header_context(hits.len(), context.unwrap_or(0));
            let ids: Vec<i64> = hits.iter().map(|m| m.id).collect();
            out.push_str(&found_in_context(&groups, &ids, budget, super::line_ids(s)));
            s.send(&out);
        }
        Ok((hits, _)) => {
            let mut out = text::search_header(hits.len());
            out.push_str(&found_lines(&hits, budget, super::line_ids(s)));
            s.send(&out);
        }
        Err(crate::error::Error::NotAQuery(why)) => s.send(&text::not_a_query(&clean(&why))),
        Err(e) => {
            log::error!("{}: search failed: {e}", s.addr);
            s.send(&text::database_unavailable());
        }
    }
    Ok(Flow::Continue)
}
