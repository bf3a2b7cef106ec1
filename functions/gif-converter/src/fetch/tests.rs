//! The fetcher against real HTTP servers on loopback (plain TCP, hand-written answers, so each
//! test controls exactly what the "source" says) and the real resolver.

use super::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

/// A loopback HTTP server answering each request by path; counts the connections it accepted.
struct Server {
    address: SocketAddr,
    connections: Arc<AtomicUsize>,
}

type Answer = Arc<dyn Fn(&str) -> Vec<u8> + Send + Sync>;

async fn serve(answer: impl Fn(&str) -> Vec<u8> + Send + Sync + 'static) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let counter = connections.clone();
    let answer: Answer = Arc::new(answer);
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            counter.fetch_add(1, Ordering::SeqCst);
            let answer = answer.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&head);
                let path = text.split_whitespace().nth(1).unwrap_or("/").to_owned();
                let response = answer(&path);
                if response == b"STALL" {
                    let _ = stream
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nabc")
                        .await;
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    return;
                }
                let _ = stream.write_all(&response).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    Server { address, connections }
}

fn ok(body: &[u8]) -> Vec<u8> {
    let mut response = format!(
        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    response.extend_from_slice(body);
    response
}

fn redirect(to: &str) -> Vec<u8> {
    format!("HTTP/1.1 302 Found\r\nlocation: {to}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").into_bytes()
}

fn status(code: u16) -> Vec<u8> {
    format!("HTTP/1.1 {code} Whatever\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").into_bytes()
}

fn chunked(total: usize) -> Vec<u8> {
    let mut response = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n".to_vec();
    let chunk = vec![b'x'; 4096];
    let mut sent = 0;
    while sent < total {
        let n = chunk.len().min(total - sent);
        response.extend_from_slice(format!("{n:x}\r\n").as_bytes());
        response.extend_from_slice(&chunk[..n]);
        response.extend_from_slice(b"\r\n");
        sent += n;
    }
    response.extend_from_slice(b"0\r\n\r\n");
    response
}

fn fetcher(allowed: &[SocketAddr], limits: FetchLimits) -> SafeFetcher {
    SafeFetcher::new(
        AddressPolicy::with_loopback_allow_list(allowed.to_vec()).unwrap(),
        "inputs",
        limits,
    )
    .unwrap()
}

fn small_limits() -> FetchLimits {
    FetchLimits {
        max_bytes: 64 * 1024,
        connect_timeout: Duration::from_secs(2),
        read_timeout: Duration::from_millis(500),
        max_redirects: 3,
    }
}

async fn fetch(fetcher: &SafeFetcher, url: &str) -> Result<(Fetched, Vec<u8>), ProcessingError> {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("source");
    let url = url::Url::parse(url).unwrap();
    let fetched = fetcher
        .fetch_to_file(&url, &dest, Deadline::after(Duration::from_secs(20)), &mut |_, _| {})
        .await?;
    Ok((fetched, std::fs::read(&dest).unwrap()))
}

#[tokio::test]
async fn an_allow_listed_loopback_source_is_fetched_whole() {
    let server = serve(|_| ok(b"video bytes")).await;
    let fetcher = fetcher(&[server.address], small_limits());
    let (fetched, body) = fetch(&fetcher, &format!("http://{}/v.mp4?X-Amz-Signature=s", server.address))
        .await
        .unwrap();
    assert_eq!(body, b"video bytes");
    assert_eq!(fetched.bytes, 11);
    assert_eq!(fetched.final_url, format!("http://{}/v.mp4", server.address));
}

#[tokio::test]
async fn loopback_not_on_the_list_is_refused_without_a_connection() {
    let server = serve(|_| ok(b"secret")).await;
    let port = server.address.port();
    let fetcher = fetcher(&[], small_limits());
    for url in [
        format!("http://localhost:{port}/"),
        format!("http://127.0.0.1:{port}/"),
        format!("http://[::ffff:127.0.0.1]:{port}/"),
        format!("http://2130706433:{port}/"),
        format!("http://0x7f.0.0.1:{port}/"),
    ] {
        let err = fetch(&fetcher, &url).await.unwrap_err();
        assert_eq!(err.code(), Code::SourceAddressForbidden, "{url}: {err}");
        assert!(!err.is_retryable());
    }
    assert_eq!(
        server.connections.load(Ordering::SeqCst),
        0,
        "no connection was ever made"
    );
}

#[tokio::test]
async fn a_name_is_judged_by_what_it_resolves_to() {
    // `localhost` resolves to loopback: refused even though the listed socket is loopback too,
    // when the port differs; allowed when the resolved socket is exactly the listed one.
    let server = serve(|_| ok(b"ok")).await;
    let port = server.address.port();
    let refused = fetch(&fetcher(&[], small_limits()), &format!("http://localhost:{port}/"))
        .await
        .unwrap_err();
    assert!(refused.reason.contains("resolves to"), "{refused}");
    let resolved: Vec<SocketAddr> = tokio::net::lookup_host(("localhost", port)).await.unwrap().collect();
    let allowed = fetcher(&resolved, small_limits());
    let (_, body) = fetch(&allowed, &format!("http://localhost:{port}/")).await.unwrap();
    assert_eq!(body, b"ok");
}

#[tokio::test]
async fn every_redirect_hop_is_checked_again() {
    let inner = serve(|_| ok(b"private")).await;
    let inner_address = inner.address;
    let outer = serve(move |path| match path {
        "/to-metadata" => redirect("http://169.254.169.254/latest/meta-data/"),
        "/to-private" => redirect("http://10.0.0.1/video.mp4"),
        "/to-decimal" => redirect("http://2130706433/"),
        "/to-unlisted-loopback" => redirect(&format!("http://127.0.0.1:{}/", inner_address.port())),
        "/to-localhost" => redirect(&format!("http://localhost:{}/", inner_address.port())),
        "/to-file" => redirect("file:///etc/passwd"),
        "/to-gopher" => redirect("gopher://example.com/"),
        "/to-s3" => redirect("s3://inputs/a.mp4"),
        "/relative" => redirect("/final"),
        "/final" => ok(b"followed"),
        "/loop" => redirect("/loop"),
        _ => status(404),
    })
    .await;
    let fetcher = fetcher(&[outer.address], small_limits());
    let base = format!("http://{}", outer.address);
    for (path, code) in [
        ("/to-metadata", Code::SourceAddressForbidden),
        ("/to-private", Code::SourceAddressForbidden),
        ("/to-decimal", Code::SourceAddressForbidden),
        ("/to-unlisted-loopback", Code::SourceAddressForbidden),
        ("/to-localhost", Code::SourceAddressForbidden),
        ("/to-file", Code::SourceSchemeRefused),
        ("/to-gopher", Code::SourceSchemeRefused),
        ("/to-s3", Code::SourceSchemeRefused),
        ("/loop", Code::TooManyRedirects),
        ("/missing", Code::SourceHttpStatus),
    ] {
        let err = fetch(&fetcher, &format!("{base}{path}")).await.unwrap_err();
        assert_eq!(err.code(), code, "{path}: {err}");
        assert!(!err.is_retryable(), "{path}");
    }
    assert!(fetch(&fetcher, &format!("{base}/to-metadata"))
        .await
        .unwrap_err()
        .reason
        .contains("redirect 1"));
    assert_eq!(
        inner.connections.load(Ordering::SeqCst),
        0,
        "the forbidden target never saw a connection"
    );
    let (fetched, body) = fetch(&fetcher, &format!("{base}/relative")).await.unwrap();
    assert_eq!((body.as_slice(), fetched.redirects), (&b"followed"[..], 1));
}

#[tokio::test]
async fn oversize_sources_are_refused_declared_or_streamed() {
    let server = serve(|path| match path {
        "/declared" => b"HTTP/1.1 200 OK\r\ncontent-length: 10000000\r\nconnection: close\r\n\r\nxxxx".to_vec(),
        "/chunked" => chunked(200 * 1024),
        "/fits" => chunked(60 * 1024),
        _ => status(404),
    })
    .await;
    let fetcher = fetcher(&[server.address], small_limits());
    let base = format!("http://{}", server.address);
    let declared = fetch(&fetcher, &format!("{base}/declared")).await.unwrap_err();
    assert_eq!(declared.code(), Code::SourceTooLarge);
    assert!(declared.reason.contains("declares 10000000 bytes"), "{declared}");
    let streamed = fetch(&fetcher, &format!("{base}/chunked")).await.unwrap_err();
    assert_eq!(streamed.code(), Code::SourceTooLarge);
    assert!(!streamed.is_retryable());
    let (fetched, _) = fetch(&fetcher, &format!("{base}/fits")).await.unwrap();
    assert_eq!(fetched.bytes, 60 * 1024);
}

#[tokio::test]
async fn a_stalling_source_is_cut_off_by_the_read_timeout_and_may_be_retried() {
    let server = serve(|_| b"STALL".to_vec()).await;
    let fetcher = fetcher(&[server.address], small_limits());
    let err = fetch(&fetcher, &format!("http://{}/", server.address))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::SourceTimeout, "{err}");
    assert!(err.is_retryable());
}

#[tokio::test]
async fn server_errors_are_retryable_client_errors_are_not_and_empty_bodies_are_refused() {
    let server = serve(|path| match path {
        "/busy" => status(503),
        "/gone" => status(410),
        "/empty" => ok(b""),
        _ => status(404),
    })
    .await;
    let fetcher = fetcher(&[server.address], small_limits());
    let base = format!("http://{}", server.address);
    assert!(fetch(&fetcher, &format!("{base}/busy"))
        .await
        .unwrap_err()
        .is_retryable());
    assert!(!fetch(&fetcher, &format!("{base}/gone"))
        .await
        .unwrap_err()
        .is_retryable());
    assert_eq!(
        fetch(&fetcher, &format!("{base}/empty")).await.unwrap_err().code(),
        Code::EmptySource
    );
}

#[tokio::test]
async fn an_allow_listed_port_with_nothing_listening_is_a_retryable_connect_failure() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let err = fetch(&fetcher(&[address], small_limits()), &format!("http://{address}/"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::SourceUnreachable, "{err}");
    assert!(err.is_retryable());
}

#[tokio::test]
async fn an_unknown_host_is_refused_by_name() {
    let err = fetch(&fetcher(&[], small_limits()), "http://no-such-host.invalid/v.mp4")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::SourceHostUnknown, "{err}");
}
