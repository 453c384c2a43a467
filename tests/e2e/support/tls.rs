//! A TLS front for a plain-HTTP test server (osmem speaks only http): makes a private CA and a
//! certificate for `127.0.0.1` signed by it, terminates TLS with rustls, and relays the bytes to
//! the upstream. For tests of certificate trust: a client that trusts the CA connects, one that
//! does not is refused during the handshake. Runs on its own thread and runtime, like the fault
//! proxy; stops on drop.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use tokio::sync::oneshot;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

/// A running TLS front on `127.0.0.1`.
pub struct TlsFront {
    endpoint: String,
    ca_pem: String,
    handshakes: Arc<Counts>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Default)]
struct Counts {
    started: AtomicUsize,
    completed: AtomicUsize,
}

impl TlsFront {
    /// Starts a front for `upstream` (`http://127.0.0.1:PORT`) on a free port.
    pub fn start(upstream: &str) -> TlsFront {
        let (ca_pem, config) = certificates();
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let upstream = super::http::authority(upstream).to_owned();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("tls front: bind");
        listener
            .set_nonblocking(true)
            .expect("tls front: nonblocking");
        let port = listener.local_addr().expect("tls front: address").port();
        let handshakes = Arc::new(Counts::default());
        let counts = Arc::clone(&handshakes);
        let (shutdown, mut stop) = oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tls front: runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("tls front");
                loop {
                    tokio::select! {
                        _ = &mut stop => break,
                        accepted = listener.accept() => {
                            let Ok((stream, _)) = accepted else { continue };
                            let (acceptor, upstream, counts) =
                                (acceptor.clone(), upstream.clone(), Arc::clone(&counts));
                            tokio::spawn(async move {
                                counts.started.fetch_add(1, Ordering::SeqCst);
                                let Ok(mut tls) = acceptor.accept(stream).await else {
                                    return;
                                };
                                counts.completed.fetch_add(1, Ordering::SeqCst);
                                if let Ok(mut plain) = tokio::net::TcpStream::connect(&upstream).await {
                                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                                }
                            });
                        }
                    }
                }
            });
            runtime.shutdown_timeout(Duration::from_secs(2));
        });
        TlsFront {
            endpoint: format!("https://127.0.0.1:{port}"),
            ca_pem,
            handshakes,
            shutdown: Some(shutdown),
            thread: Some(thread),
        }
    }

    /// `https://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        self.endpoint.clone()
    }

    /// The PEM of the CA that signed the front's certificate.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// TLS handshakes begun so far (TCP connections accepted).
    pub fn handshakes_started(&self) -> usize {
        self.handshakes.started.load(Ordering::SeqCst)
    }

    /// TLS handshakes that succeeded so far.
    pub fn handshakes_completed(&self) -> usize {
        self.handshakes.completed.load(Ordering::SeqCst)
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A fresh CA (its PEM) and a server configuration whose certificate for `127.0.0.1` it signed.
fn certificates() -> (String, ServerConfig) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "s3-connector test CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_key = KeyPair::generate().expect("ca key");
    let ca_pem = ca_params
        .self_signed(&ca_key)
        .expect("ca certificate")
        .pem();
    let issuer = Issuer::new(ca_params, ca_key);

    let mut params = CertificateParams::new(vec!["127.0.0.1".to_owned()]).expect("params");
    params
        .distinguished_name
        .push(DnType::CommonName, "127.0.0.1");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let key = KeyPair::generate().expect("server key");
    let certificate = params.signed_by(&key, &issuer).expect("server certificate");
    let config = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(
            vec![certificate.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .expect("server config");
    (ca_pem, config)
}
