//! Issue 14's fail-open holes, each pinned on the wire: a request that
//! selects no check, an agent route that does not exist, a status that
//! depends on the format, a bad config under every launcher, the listen
//! queue, the peer in the log, public reasons.

mod support;
