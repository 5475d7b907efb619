//! The relay between an SSH channel and the session's socket, through the line editor.

use russh::server::Msg;
use russh::{Channel, ChannelMsg};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::editor::Editor;

/// Moves the user's keys (through the editor) to the session, and the session's output
/// (through the editor) to the user, until either side ends.
pub async fn relay(channel: Channel<Msg>, mut plain: tokio::net::UnixStream, mut editor: Editor) {
    let (mut from_user, to_user) = channel.split();
    if plain.write_all(Editor::hello()).await.is_err() {
        return;
    }
    let mut buf = vec![0u8; 4096];
    loop {
        tokio::select! {
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
