//! A relay far away, on 127.0.0.1: a TCP proxy that holds every chunk it
//! forwards for a fixed delay in each direction, so a server on this
//! machine answers as if it were 2 × delay away (SES, a company MTA).
//! `benches/smtp.sh` puts it in front of smtp-sink when DELAY_MS is set,
//! for dripline and smtp-source alike:
//!
//!     relay LISTEN TARGET DELAY_MS SECONDS
//!
//! It listens on 127.0.0.1 only and exits after SECONDS. Run without
//! arguments (as `cargo bench` does) it says how to use it and exits.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let [listen, target, delay, seconds] = &args[..] else {
        println!(
            "relay: a delaying proxy for benches/smtp.sh (DELAY_MS=10 bash benches/smtp.sh); usage: relay LISTEN TARGET DELAY_MS SECONDS"
        );
        return Ok(());
    };
    let listen: SocketAddr = listen.parse()?;
    if !listen.ip().is_loopback() {
        return Err("relay listens on 127.0.0.1 only".into());
    }
    let target: SocketAddr = target.parse()?;
    let delay = Duration::from_millis(delay.parse()?);
    let lifetime = Duration::from_secs(seconds.parse()?);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = TcpListener::bind(listen).await?;
        let serving = async {
            loop {
                let (client, _) = listener.accept().await?;
                tokio::spawn(relay(client, target, delay));
            }
        };
        tokio::select! {
            result = serving => result,
            () = tokio::time::sleep(lifetime) => Ok::<(), std::io::Error>(()),
        }
    })?;
    Ok(())
}

/// Forwards one connection both ways, each chunk `delay` late.
async fn relay(client: TcpStream, target: SocketAddr, delay: Duration) {
    let Ok(server) = TcpStream::connect(target).await else {
        return;
    };
    let _ = (client.set_nodelay(true), server.set_nodelay(true));
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    tokio::join!(
        one_way(client_read, server_write, delay),
        one_way(server_read, client_write, delay)
    );
}

/// Reads chunks as they come and writes each one once its delay is over,
/// in order: the delay is latency, not a limit on throughput.
async fn one_way(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, delay: Duration) {
    let (sender, mut chunks) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let reading = async move {
        let mut buffer = vec![0; 64 * 1024];
        while let Ok(n @ 1..) = from.read(&mut buffer).await {
            if sender
                .send((Instant::now() + delay, buffer[..n].to_vec()))
                .is_err()
            {
                break;
            }
        }
    };
    let writing = async move {
        while let Some((due, chunk)) = chunks.recv().await {
            tokio::time::sleep_until(due).await;
            if to.write_all(&chunk).await.is_err() {
                break;
            }
        }
        let _ = to.shutdown().await;
    };
    tokio::join!(reading, writing);
}
