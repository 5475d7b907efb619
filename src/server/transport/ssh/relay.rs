//! The relay between an SSH channel and the session's socket, through the line editor.

use russh::server::Msg;
use russh::{Channel, ChannelMsg};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::editor::Editor;

/// How long output that ends without a line end waits for the rest of its line before it
/// is taken for a prompt: the rest of a line split across two reads of the socket pair
/// comes at once; a prompt (`Name: `) shows this much later.
const SETTLE: std::time::Duration = std::time::Duration::from_millis(100);

/// A deadline never reached (the settle branch is off when nothing is pending).
const FAR: std::time::Duration = std::time::Duration::from_secs(3600);

/// Moves the user's keys (through the editor) to the session, and the session's output
/// (through the editor) to the user, until either side ends.
pub async fn relay(channel: Channel<Msg>, mut plain: tokio::net::UnixStream, mut editor: Editor) {
    let (mut from_user, to_user) = channel.split();
    if plain.write_all(Editor::hello()).await.is_err() {
        return;
    }
    let mut buf = vec![0u8; 4096];
    // When output that ends without a line end becomes a prompt (see `Editor::settle`).
    let mut settle_at: Option<tokio::time::Instant> = None;
    loop {
        let settle = settle_at.unwrap_or_else(|| tokio::time::Instant::now() + FAR);
        tokio::select! {
            _ = tokio::time::sleep_until(settle), if settle_at.is_some() => {
                settle_at = None;
                let out = editor.settle();
                if !out.is_empty() && to_user.data(&out[..]).await.is_err() {
                    break;
                }
            }
            msg = from_user.wait() => match msg {
                Some(ChannelMsg::Data { data }) => {
                    let step = editor.keys(&data);
                    if !step.terminal.is_empty() && to_user.data(&step.terminal[..]).await.is_err() {
                        break;
                    }
                    if !step.session.is_empty() && plain.write_all(&step.session).await.is_err() {
                        break;
                    }
                }
                Some(ChannelMsg::Eof | ChannelMsg::Close) | None => break,
                Some(_) => {}
            },
            read = plain.read(&mut buf) => match read {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let out = editor.output(&buf[..n]);
                    if !out.is_empty() && to_user.data(&out[..]).await.is_err() {
                        break;
                    }
                    settle_at = editor
                        .has_pending()
                        .then(|| tokio::time::Instant::now() + SETTLE);
                }
            },
        }
    }
    // The session reads its EOF and ends; the user's client sees the channel close.
    let _ = plain.shutdown().await;
    let _ = to_user.exit_status(0).await;
    let _ = to_user.eof().await;
    let _ = to_user.close().await;
}
